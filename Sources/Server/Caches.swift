import Foundation
import Reports
import ResultStore

/// Encoded answers by request, each under the store's stamp when it was made: at most `capacity` answers of at most
/// `largest` bytes each, the least recently used dropped first.
final class AnswerCache: @unchecked Sendable {
    static let capacity = 32
    static let largest = 8 << 20
    private let lock = NSLock()
    private var entries: [String: (stamp: String, text: String, used: UInt64)] = [:]
    private var uses: UInt64 = 0

    func text(for key: String, stamp: String) -> String? {
        lock.withLock {
            guard let entry = entries[key], entry.stamp == stamp else { return nil }
            uses += 1
            entries[key]?.used = uses
            return entry.text
        }
    }

    func keep(_ text: String, for key: String, stamp: String) {
        guard text.utf8.count <= Self.largest else { return }
        lock.withLock {
            uses += 1
            entries[key] = (stamp, text, uses)
            while entries.count > Self.capacity, let oldest = entries.min(by: { $0.value.used < $1.value.used }) {
                entries[oldest.key] = nil
            }
        }
    }
}

/// Per run, its curves (small: one per checkpoint and series) and, for the few runs asked for last, its full rows;
/// each under the run's stamp (`RunSummary.stamp`), so a change to one run leaves the others' in place.
final class RunCache: @unchecked Sendable {
    /// How many runs' full rows are kept: a run's page asks for them several times in a row.
    static let runsWithRows = 8
    private let lock = NSLock()
    private var curves: [String: (stamp: String, curves: [ExtrapolationCurve])] = [:]
    private var rows: [String: (stamp: String, rows: [StoredResultsReport.Row], used: UInt64)] = [:]
    /// Per run, its passkey rows (none for most runs): small, kept for every run like the curves.
    private var passkey: [String: (stamp: String, rows: [StoredResultsReport.Row])] = [:]
    private var uses: UInt64 = 0

    func curves(of run: RunSummary) -> [ExtrapolationCurve]? {
        lock.withLock { curves[run.name].flatMap { $0.stamp == run.stamp ? $0.curves : nil } }
    }

    func keep(_ curves: [ExtrapolationCurve], of run: RunSummary) {
        lock.withLock { self.curves[run.name] = (run.stamp, curves) }
    }

    func passkey(of run: RunSummary) -> [StoredResultsReport.Row]? {
        lock.withLock { passkey[run.name].flatMap { $0.stamp == run.stamp ? $0.rows : nil } }
    }

    func keep(passkey rows: [StoredResultsReport.Row], of run: RunSummary) {
        lock.withLock { passkey[run.name] = (run.stamp, rows) }
    }

    func rows(of run: RunSummary) -> [StoredResultsReport.Row]? {
        lock.withLock {
            guard let kept = rows[run.name], kept.stamp == run.stamp else { return nil }
            uses += 1
            rows[run.name]?.used = uses
            return kept.rows
        }
    }

    func keep(_ rows: [StoredResultsReport.Row], of run: RunSummary) {
        lock.withLock {
            uses += 1
            self.rows[run.name] = (run.stamp, rows, uses)
            while self.rows.count > Self.runsWithRows, let oldest = self.rows.min(by: { $0.value.used < $1.value.used })
            {
                self.rows[oldest.key] = nil
            }
        }
    }

    func forget(runsOtherThan present: Set<String>) {
        lock.withLock {
            curves = curves.filter { present.contains($0.key) }
            passkey = passkey.filter { present.contains($0.key) }
            rows = rows.filter { present.contains($0.key) }
        }
    }
}
