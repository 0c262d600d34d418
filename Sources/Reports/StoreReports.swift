import Engine
import Evaluation
import Foundation
import ResultStore

/// `extrapolate results`: every stored result, one row per (checkpoint, series, length).
public struct StoredResultsReport: ResultReport {
    /// One result as `results --json` writes it.
    public struct Row: Sendable, Hashable, Codable {
        /// The store's identifier of the checkpoint version (what `/api/checkpoints/{id}/requeue` takes).
        public var checkpointID: Int64
        public var run: String
        public var checkpoint: String
        public var step: Int?
        /// `current`, or `replaced` / `gone` for versions no longer on disk as they were.
        public var checkpointState: CheckpointState
        public var series: String
        /// The protocol the numbers were computed under (`nonoverlapping`, `sliding:S`, `last-half`).
        public var evaluationProtocol: String
        public var length: Int
        public var trainedLength: Int
        public var multiple: Double
        /// `evaluated`, `unsupported` or `skipped`, with the reason when not evaluated.
        public var outcome: ResultOutcome
        public var reason: String?
        public var perplexity: Double?
        public var meanNLL: Double?
        public var tokens: Int?
        public var interval: Interval?
        /// What to be careful about (an interval from too few windows), as in `sweep`.
        public var warnings: [String]
        public var seconds: Double?
        public var finished: Date
        /// What identifies the result: checkpoint content, architecture, scoring settings, engine version.
        public var contentHash: String
        public var architectureHash: String
        public var scoringHash: String
        public var engineVersion: String
        /// The full result: per-position buckets and per-window NLL.
        public var result: EvaluationResult?
        /// Where the trained length came from (`CheckpointSummary.trainedLengthSource`).
        public var trainedLengthSource: String?
        /// The data scored (path and checksum), when the result recorded it.
        public var data: DataReference?
        /// How many windows (or documents, with per-document cutting) the interval was resampled over.
        public var windows: Int?
        /// `key = value` of config.json keys the importer did not read (`SweepPoint.configNotRead`).
        public var configNotRead: [String]?
        /// A passkey result: one cell (length × depth) with its accuracy and trials (`SweepPoint.passkey`); the
        /// perplexity fields are then empty. `nil` for a perplexity result.
        public var passkey: PasskeyResult.Cell?
        /// The arithmetic of the products: `float32` (exact; every result stored before precision was recorded) or
        /// `bf16` (`--precision bf16`).
        public var precision: Precision

        enum CodingKeys: String, CodingKey {
            case checkpointID, run, checkpoint, step, checkpointState, series, evaluationProtocol = "protocol", length
            case trainedLength, trainedLengthSource, multiple, outcome, reason, perplexity, meanNLL, tokens, interval
            case warnings, seconds, finished, data, windows, configNotRead, passkey, precision
            case contentHash, architectureHash, scoringHash, engineVersion, result
        }

        /// What the row measures.
        public var task: EvaluationTask { passkey == nil ? .perplexity : .passkey }

        /// Whether the interval rests on fewer windows than `Bootstrap.reliableUnits`.
        public var fewWindows: Bool { windows.map { $0 < Bootstrap.reliableUnits } ?? false }

        public init(_ row: ResultRow) {
            let point = row.result.point
            checkpointID = row.checkpointID
            run = row.run
            checkpoint = row.checkpoint
            step = row.step
            checkpointState = row.checkpointState
            series = row.result.series
            evaluationProtocol = point.result?.evaluationProtocol.description ?? row.result.series
            length = row.result.length
            trainedLength = point.trainedLength
            multiple = point.multiple
            outcome = row.result.outcome
            reason = row.result.reason
            perplexity = point.perplexity
            meanNLL = point.meanNLL
            tokens = point.tokens
            interval = point.interval
            warnings = point.warnings
            seconds = point.result?.seconds
            finished = row.result.finished
            contentHash = row.result.contentHash
            architectureHash = row.result.architectureHash
            scoringHash = row.result.scoringHash
            engineVersion = row.result.engineVersion
            result = point.result
            trainedLengthSource = point.trainedLengthSource
            data = point.data
            windows = point.result.map { Bootstrap.unitCount($0).0 }
            configNotRead = point.configNotRead
            passkey = point.passkey
            precision = point.computedPrecision
            if passkey != nil { evaluationProtocol = EvaluationTask.passkey.rawValue }
        }
    }

    /// The perplexity rows (what the table, the CSV, the curves and the alerts read).
    public var perplexityRows: [Row] { result.filter { $0.passkey == nil } }
    /// The passkey rows (`StoredPasskeyReport`).
    public var passkeyRows: [Row] { result.filter { $0.passkey != nil } }

    public let result: [Row]

    public init(_ rows: [ResultRow]) { result = rows.map(Row.init) }

    /// The stored results of `run` (else of every run), read one run at a time, in the listing's order; without
    /// the per-window detail unless `detail` (JSON has it): a lab's store holds tens of thousands of results, and
    /// the detail is most of their size.
    public static func load(
        from store: any ResultStore, run: String?, detail: Bool, keeping: (Row) -> Bool = { _ in true }
    ) async throws(StoreError) -> StoredResultsReport {
        let runs: [String]
        if let run { runs = [run] } else { runs = try await store.runs().map(\.name) }
        var rows: [Row] = []
        for name in runs {
            for stored in try await store.results(run: name) {
                var row = Row(stored)
                guard keeping(row) else { continue }
                if !detail { row.result = nil }
                rows.append(row)
            }
        }
        return StoredResultsReport(rows: rows)
    }

    /// A report of rows already converted (filtered from another report).
    public init(rows: [Row]) { result = rows }

    /// The perplexity results as a table, and after it the passkey results (`StoredPasskeyReport.table`) if any.
    public func table() -> String {
        let passkey = passkeyRows
        guard !passkey.isEmpty else { return perplexityTable() }
        return (perplexityRows.isEmpty ? "" : perplexityTable() + "\n\n") + StoredPasskeyReport(passkey).table()
    }

    private func perplexityTable() -> String {
        typealias C = TextColumns
        let result = perplexityRows
        guard !result.isEmpty else { return "no results stored yet" }
        var lines = [
            C.pad("run", 14, left: true) + C.pad("step", 8) + C.pad("length", 8) + C.pad("×", 7) + "  "
                + C.pad("series", 16, left: true) + C.pad("tokens", 9) + C.pad("ppl", 12) + "  "
                + C.pad("95% interval", 22, left: true) + "  note"
        ]
        var warnings: [String] = []
        for row in result {
            var interval = row.interval.map { String(format: "[%.4g, %.4g]", $0.lower, $0.upper) } ?? "-"
            if !row.warnings.isEmpty {
                interval += " *"
                for warning in row.warnings where !warnings.contains(warning) { warnings.append(warning) }
            }
            var note = row.outcome == .evaluated ? "" : "\(row.outcome.rawValue): \(row.reason ?? "")"
            if row.checkpointState != .current { note += (note.isEmpty ? "" : "; ") + "file \(row.checkpointState)" }
            lines.append(
                C.pad(row.run, 14, left: true) + C.pad(row.step.map(String.init) ?? "-", 8) + C.pad("\(row.length)", 8)
                    + C.pad(String(format: "%.2f", row.multiple), 7) + "  " + C.pad(row.series, 16, left: true)
                    + C.pad(row.tokens.map(String.init) ?? "-", 9)
                    + C.pad(row.perplexity.map { String(format: "%.4g", $0) } ?? "-", 12) + "  "
                    + C.pad(interval, 22, left: true) + "  " + note)
        }
        if !warnings.isEmpty { lines += [""] + warnings.map { "* \($0)" } }
        return lines.joined(separator: "\n")
    }

    /// The perplexity results, one row each (`StoredPasskeyReport.csv` has the passkey cells).
    public func csv() -> String {
        let rows = perplexityRows.map(ResultCSV.row)
        return ([ResultCSV.header] + rows).joined(separator: "\n") + "\n"
    }
}

/// `extrapolate status`: runs, their checkpoint versions with what became of them, and the queue.
public struct StatusReport: ResultReport {
    /// One checkpoint version and its jobs.
    public struct Checkpoint: Sendable, Hashable, Codable {
        public var path: String
        public var step: Int?
        /// What to tell a user: the job's state for a readable version (`pending`, `running`, `done`, `failed`),
        /// else the version's (`incomplete`, `invalid`, `replaced`, `gone`).
        public var state: String
        /// Why: the failure or the reason it cannot be read.
        public var reason: String?
        public var contentHash: String
        /// Results recorded out of planned, over this version's jobs.
        public var done: Int
        public var planned: Int
        public var jobs: [JobRecord]
        /// The private copy this version is evaluated from (a file its trainer rewrites in place), while needed.
        public var snapshot: String?
    }

    public struct Run: Sendable, Hashable, Codable {
        public var name: String
        public var folder: String
        /// Its versions and jobs counted by state, newest step and results.
        public var summary: RunSummary?
        /// Its versions listed: every one, or (the text's default) those that need a look.
        public var checkpoints: [Checkpoint]
    }

    public struct Result: Sendable, Hashable, Codable {
        public var runs: [Run]
        /// Jobs by state.
        public var queue: [String: Int]
        /// Results stored in all.
        public var results: Int
        /// Versions kept in snapshots until evaluated, and the bytes those copies take.
        public var snapshots: Int
        public var snapshotBytes: Int
    }

    public let result: Result

    /// - Parameters:
    ///   - status: the versions to list (every one, or `ResultStore.unsettled`'s) and their jobs.
    ///   - summaries: every run's counts (`ResultStore.runs`); by default counted from `status`.
    public init(_ status: StoreStatus, summaries: [RunSummary]? = nil) {
        let jobsByCheckpoint = Dictionary(grouping: status.jobs, by: \.checkpointID)
        let byRun = Dictionary(grouping: status.checkpoints, by: \.run)
        let summaries = summaries ?? status.summaries
        let runs = summaries.map { summary -> Run in
            let versions = (byRun[summary.name] ?? []).sorted {
                ($0.step ?? -1, $0.path, $0.id) < ($1.step ?? -1, $1.path, $1.id)
            }
            return Run(
                name: summary.name, folder: summary.folder, summary: summary,
                checkpoints: versions.map { version in
                    let jobs = jobsByCheckpoint[version.id] ?? []
                    // The newest job of each task (perplexity, passkey): the version is as far as the least
                    // advanced of them (running, then pending, failed, done), with their progress summed.
                    let newestPerTask = Dictionary(grouping: jobs, by: \.settings.task).compactMap {
                        $0.value.max { $0.id < $1.id }
                    }
                    let order: [JobState] = [.running, .pending, .failed, .done]
                    let latest = newestPerTask.min { a, b in
                        (order.firstIndex(of: a.state) ?? order.count, a.id)
                            < (order.firstIndex(of: b.state) ?? order.count, b.id)
                    }
                    // A version evaluated before its file was rewritten or removed shows how its job ended.
                    let state =
                        version.isEvaluable || latest?.state == .done
                        ? latest?.state.rawValue ?? "pending" : version.state.rawValue
                    var reason = version.reason ?? latest?.error
                    if let latest, latest.state == .pending, let notBefore = latest.notBefore, notBefore > Date() {
                        reason =
                            "retrying after \(ISO8601DateFormatter().string(from: notBefore)): \(latest.error ?? "")"
                    }
                    return Checkpoint(
                        path: version.path, step: version.step, state: state, reason: reason,
                        contentHash: version.contentHash, done: newestPerTask.reduce(0) { $0 + $1.done },
                        planned: newestPerTask.reduce(0) { $0 + $1.planned },
                        jobs: jobs, snapshot: version.snapshot)
                })
        }
        let kept = status.checkpoints.filter { $0.snapshot != nil }
        var queue: [String: Int] = [:]
        for summary in summaries { queue.merge(summary.jobs, uniquingKeysWith: +) }
        result = Result(
            runs: runs, queue: queue,
            results: status.results, snapshots: kept.count, snapshotBytes: kept.reduce(0) { $0 + $1.size })
    }

    /// The text `status` prints: each run's versions counted by state, then the versions that need a look (not yet
    /// done, failed, unreadable: at most `limit` per run, newest first), or with `everyVersion` every version.
    public func table(everyVersion: Bool = false, limit: Int = 20) -> String {
        typealias C = TextColumns
        guard !result.runs.isEmpty else { return "no checkpoints found yet" }
        var lines: [String] = []
        /// States that need no look: evaluated, or no longer on disk as they were.
        let settled: Set<String> = ["done", "replaced", "gone", "cancelled"]
        func counted(_ counts: [String: Int]) -> String {
            counts.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { "\($0.value) \($0.key)" }
                .joined(separator: ", ")
        }
        for run in result.runs {
            let summary = run.summary ?? RunSummary(name: run.name, folder: run.folder)
            let versions = summary.checkpoints.values.reduce(0, +)
            lines.append(
                "\(run.name)  (\(run.folder)): \(versions) version\(versions == 1 ? "" : "s") (\(counted(summary.checkpoints)))"
                    + "; jobs: \(summary.jobs.isEmpty ? "none" : counted(summary.jobs))"
                    + (summary.newestStep.map { "; newest step \($0)" } ?? ""))
            var shown = everyVersion ? run.checkpoints : run.checkpoints.filter { !settled.contains($0.state) }
            if !everyVersion, shown.count > limit {
                lines.append("  … \(shown.count - limit) older ones not shown (extrapolate status --run \(run.name))")
                shown = Array(shown.suffix(limit))
            }
            for checkpoint in shown {
                let progress = checkpoint.planned > 0 ? "\(checkpoint.done)/\(checkpoint.planned)" : ""
                var line =
                    "  " + C.pad(checkpoint.step.map { "step \($0)" } ?? "-", 12, left: true)
                    + C.pad(checkpoint.state, 11, left: true) + C.pad(progress, 7) + "  "
                    + (checkpoint.path as NSString).lastPathComponent
                    + (checkpoint.snapshot == nil ? "" : "  (from a snapshot: the file holds a later save)")
                if let reason = checkpoint.reason { line += "\n      " + reason }
                lines.append(line)
            }
        }
        let queue = JobState.allCases.compactMap { state in
            result.queue[state.rawValue].map { "\($0) \(state.rawValue)" }
        }
        lines.append("")
        lines.append(
            "jobs: " + (queue.isEmpty ? "none" : queue.joined(separator: ", ")) + "; results stored: \(result.results)"
                + "; snapshots: \(result.snapshots) (\(String(format: "%.1f", Double(result.snapshotBytes) / 0x1p20)) MiB)"
        )
        if !everyVersion {
            lines.append(
                "versions done, replaced or gone are counted, not listed: --run NAME lists every version of a run, "
                    + "--all of every run")
        }
        return lines.joined(separator: "\n")
    }
}
