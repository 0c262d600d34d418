import Foundation
import Testing

@testable import Evaluation
@testable import Reports
@testable import ResultStore

/// Stored passkey cells as the page, the report and the alerts read them: accuracy per length pooled over depths
/// with the Wilson interval of the pooled trials, and an alert only for a drop between a run's two newest
/// checkpoints larger than the threshold.
@Suite struct StoredPasskey {
    /// A stored cell of run `run` at `step`: `retrieved` of `trials` at `length` (trained length 64) and `depth`.
    func row(
        run: String = "r", step: Int, length: Int = 256, depth: Double, retrieved: Int, trials: Int = 10,
        skipped: String? = nil
    ) -> StoredResultsReport.Row {
        let summary = CheckpointSummary(
            checkpoint: "/runs/\(run)/step-\(step).safetensors", name: .init(run: run, step: step, scheme: .plain),
            architecture: "a", architectureHash: "sha256:a", trainedLength: 64)
        var point = SweepPoint(checkpoint: summary, series: "model", length: length, result: nil, interval: nil)
        let (lower, upper) = Passkey.wilson(successes: retrieved, trials: trials)
        point.passkey = PasskeyResult.Cell(
            series: "model", length: length, depth: depth, retrieved: retrieved,
            accuracy: Double(retrieved) / Double(trials), lower: lower, upper: upper, keyLogProbability: -1,
            trials: (0..<trials).map {
                Passkey.Trial(
                    key: 10_000 + $0, length: length, fillerCharacters: 0, retrieved: $0 < retrieved,
                    keyLogProbability: -1, keyTokenLogProbabilities: [-1])
            }, skipped: skipped, tokensPerSecond: 1000, seed: 0, tokenizer: "bytes")
        let key = ResultKey(
            contentHash: "xxh64:\(run)\(step)", architectureHash: "sha256:a", scoringHash: "sha256:\(depth)",
            series: "model", length: length, engineVersion: "e")
        let record = ResultRecord(
            key: key, outcome: skipped == nil ? .evaluated : .unsupported, point: point, reason: skipped,
            started: Date(), finished: Date())
        return StoredResultsReport.Row(
            ResultRow(
                checkpointID: Int64(step), run: run, checkpoint: summary.checkpoint, step: step,
                checkpointState: .current, settingsHash: "h", result: record))
    }

    @Test("Accuracy at a length pools the depths' trials; its interval is the Wilson interval of the pool")
    func poolsDepths() throws {
        let report = self.report([row(step: 1, depth: 0, retrieved: 9), row(step: 1, depth: 100, retrieved: 3)])
        let entry = try #require(report.byLength.first)
        #expect(report.byLength.count == 1 && entry.retrieved == 12 && entry.trials == 20 && entry.accuracy == 0.6)
        let (lower, upper) = Passkey.wilson(successes: 12, trials: 20)
        #expect(entry.lower == lower && entry.upper == upper && entry.multiple == 4)
        // A cell that did not run is not a zero.
        let skipped = report.rows + [row(step: 1, length: 64, depth: 0, retrieved: 0, skipped: "too short")]
        #expect(StoredPasskeyReport(skipped).byLength.count == 1)
        let lines = StoredPasskeyReport(skipped).csv().split(separator: "\n")
        #expect(lines.first?.hasSuffix(",outcome,finished,reason") == true)
        #expect(lines.contains { $0.contains(",unsupported,") && $0.hasSuffix(",too short") })
    }

    func report(_ rows: [StoredResultsReport.Row]) -> StoredPasskeyReport { StoredPasskeyReport(rows) }

    @Test(
        "An alert when the newest checkpoint's accuracy at a length fell more than the threshold; not for older drops")
    func alerts() throws {
        let rows = [
            row(step: 100, depth: 0, retrieved: 10), row(step: 100, depth: 100, retrieved: 10),  // 100 %
            row(step: 200, depth: 0, retrieved: 5), row(step: 200, depth: 100, retrieved: 5),  // 50 %
            row(step: 300, depth: 0, retrieved: 4), row(step: 300, depth: 100, retrieved: 2),  // 30 %
        ]
        // 200 → 300: −20 points: not more than 0.2; the drop 100 → 200 is history.
        #expect(report(rows).alerts(threshold: 0.2).isEmpty)
        let alerts = report(rows).alerts(threshold: 0.15)
        let alert = try #require(alerts.first)
        #expect(alerts.count == 1 && alert.kind == .passkey && alert.step == 300 && alert.previousStep == 200)
        #expect(abs(alert.value - 0.2) < 1e-12 && alert.multiple == 4)
        #expect(
            alert.message
                == "r: passkey accuracy at 4L (256 tokens) fell from 50% at step 200 to 30% at step 300 (more than 15 points)"
        )
        // Perplexity rows are not passkey rows.
        #expect(StoredResultsReport(rows: rows).perplexityRows.isEmpty)
    }

    @Test("Thresholds written before passkeyDrop read with its default")
    func olderThresholds() throws {
        let old = #"{"regression":0.1,"ratio":4,"ratioMultiple":16}"#
        let decoded = try JSONDecoder().decode(AlertThresholds.self, from: Data(old.utf8))
        #expect(decoded == AlertThresholds() && decoded.passkeyDrop == 0.2)
    }
}
