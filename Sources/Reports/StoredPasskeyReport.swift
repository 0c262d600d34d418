import Engine
import Evaluation
import Foundation
import ResultStore

/// The daemon's stored passkey results (`tasks = ["passkey"]`): per checkpoint a grid of accuracy by length and
/// depth, the accuracy at each length (the mean over depths) against length and against training step, CSV with one
/// row per cell, and the alert when a run's newest checkpoint retrieves less than the one before.
public struct StoredPasskeyReport: Sendable {
    /// The passkey rows, ordered by run, step, series, length and depth.
    public let rows: [StoredResultsReport.Row]

    /// The passkey rows among `rows` (perplexity rows are left out).
    public init(_ rows: [StoredResultsReport.Row]) {
        self.rows = rows.filter { $0.passkey != nil }.sorted { a, b in
            (a.run, a.step ?? -1, a.checkpointID, a.series, a.length, a.passkey?.depth ?? 0) < (
                b.run, b.step ?? -1, b.checkpointID, b.series, b.length, b.passkey?.depth ?? 0
            )
        }
    }

    /// Each checkpoint's cells as one `PasskeyResult` (what `extrapolate passkey` prints), in row order; a
    /// checkpoint evaluated in two precisions has one result per precision.
    public var results: [(checkpointID: Int64, run: String, step: Int?, result: PasskeyResult)] {
        struct Key: Hashable {
            var checkpointID: Int64
            var precision: Precision
        }
        var order: [Key] = []
        var byCheckpoint: [Key: [StoredResultsReport.Row]] = [:]
        for row in rows {
            let key = Key(checkpointID: row.checkpointID, precision: row.precision)
            if byCheckpoint[key] == nil { order.append(key) }
            byCheckpoint[key, default: []].append(row)
        }
        return order.map { key in
            let id = key.checkpointID
            let mine = byCheckpoint[key] ?? []
            let cells = mine.compactMap(\.passkey)
            let first = mine[0]
            let depths = Array(Set(cells.map(\.depth))).sorted()
            let result = PasskeyResult(
                checkpoint: first.checkpoint, tokenizer: cells.compactMap(\.tokenizer).first ?? "?",
                trainedLength: first.trainedLength, seed: cells.compactMap(\.seed).first ?? 0,
                trials: cells.map(\.trials.count).max() ?? 0, depths: depths, cells: cells,
                engineVersion: first.engineVersion, precision: first.precision)
            return (id, first.run, first.step, result)
        }
    }

    /// The text: each checkpoint's grid (`PasskeyReport.text`), run by run.
    public func table() -> String {
        guard !rows.isEmpty else { return "no passkey results stored yet" }
        return results.map { entry in
            "\(entry.run)\(entry.step.map { " step \($0)" } ?? ""): " + PasskeyReport(entry.result).text
        }.joined(separator: "\n\n")
    }

    /// One row per cell: where, the accuracy with its Wilson interval, the key's mean log-probability, and why a cell
    /// did not run (last: the only column that may hold a comma, so tools that cut by column count stay aligned).
    public func csv() -> String {
        var lines = [
            "run,step,checkpoint,checkpoint_id,series,length,multiple,depth,trials,retrieved,accuracy,accuracy_lower,"
                + "accuracy_upper,key_log_probability,tokens_per_second,outcome,finished,reason"
        ]
        let time = ISO8601DateFormatter()
        for row in rows {
            guard let cell = row.passkey else { continue }
            let evaluated = cell.skipped == nil
            lines.append(
                [
                    TextColumns.csvField(row.run), row.step.map(String.init) ?? "",
                    TextColumns.csvField(row.checkpoint),
                    "\(row.checkpointID)", TextColumns.csvField(row.series), "\(row.length)", "\(row.multiple)",
                    PasskeyReport.percent(cell.depth), "\(cell.trials.count)", evaluated ? "\(cell.retrieved)" : "",
                    evaluated ? "\(cell.accuracy)" : "", evaluated ? "\(cell.lower)" : "",
                    evaluated ? "\(cell.upper)" : "", cell.keyLogProbability.map { "\($0)" } ?? "",
                    evaluated ? "\(cell.tokensPerSecond)" : "", row.outcome.rawValue, time.string(from: row.finished),
                    TextColumns.csvField(row.reason ?? ""),
                ].joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The heatmap of checkpoint `checkpointID` (`series`: "model" or an extension's name), or `nil` without its
    /// results.
    public func heatmapSVG(checkpoint checkpointID: Int64, series: String? = nil) -> String? {
        guard let entry = results.first(where: { $0.checkpointID == checkpointID }) else { return nil }
        var result = entry.result
        if let step = entry.step { result.checkpoint = "\(entry.run) step \(step)" }
        return PasskeyReport(result).heatmapSVG(series: series)
    }

    /// The accuracy at each length of one checkpoint and series: the mean over depths of the cells that ran (each
    /// depth has the same trials), with the Wilson interval of the pooled trials.
    public struct LengthAccuracy: Sendable, Hashable, Codable {
        public var run: String
        public var step: Int?
        public var checkpointID: Int64
        public var series: String
        public var length: Int
        public var multiple: Double
        public var retrieved: Int
        public var trials: Int
        public var accuracy: Double
        public var lower: Double
        public var upper: Double
    }

    /// Every checkpoint's accuracy at each length and series (lengths where no cell ran are left out).
    public var byLength: [LengthAccuracy] {
        var grouped: [String: LengthAccuracy] = [:]
        var order: [String] = []
        for row in rows {
            guard let cell = row.passkey, cell.skipped == nil else { continue }
            let key = "\(row.checkpointID)|\(row.series)|\(row.length)"
            var entry =
                grouped[key]
                ?? LengthAccuracy(
                    run: row.run, step: row.step, checkpointID: row.checkpointID, series: row.series,
                    length: row.length, multiple: row.multiple, retrieved: 0, trials: 0, accuracy: 0, lower: 0,
                    upper: 1)
            if grouped[key] == nil { order.append(key) }
            entry.retrieved += cell.retrieved
            entry.trials += cell.trials.count
            grouped[key] = entry
        }
        return order.compactMap { key in
            guard var entry = grouped[key] else { return nil }
            entry.accuracy = Double(entry.retrieved) / Double(max(entry.trials, 1))
            (entry.lower, entry.upper) = Passkey.wilson(successes: entry.retrieved, trials: entry.trials)
            return entry
        }
    }

    /// Accuracy against length (× the trained length), one line per checkpoint and series, Wilson bands.
    public func lengthsSVG(run: String) -> String {
        let entries = byLength.filter { $0.run == run }
        var series: [Plot.Series] = []
        var seen: [String] = []
        for entry in entries where !seen.contains("\(entry.checkpointID)|\(entry.series)") {
            seen.append("\(entry.checkpointID)|\(entry.series)")
            let mine = entries.filter { $0.checkpointID == entry.checkpointID && $0.series == entry.series }
            let name =
                (entry.step.map { "step \($0)" } ?? "checkpoint \(entry.checkpointID)")
                + (entry.series == "model" ? "" : " \(entry.series)")
            series.append(
                Plot.Series(
                    name: name, points: mine.map { (x: $0.multiple, y: $0.accuracy) },
                    band: mine.map { (x: $0.multiple, lower: $0.lower, upper: $0.upper) }))
        }
        return Plot.svg(
            title: "\(run): passkey retrieval by length", xLabel: "length (× trained length)",
            yLabel: "accuracy (mean over depths)", series: series, logX: true,
            note: "bands: 95% Wilson intervals over every trial of the length",
            yIncludes: [0, 1], xValue: { "\(Plot.format($0))L" })
    }

    /// Accuracy at each length against training step, one line per length and series.
    public func stepsSVG(run: String) -> String {
        let entries = byLength.filter { $0.run == run && $0.step != nil }
        var series: [Plot.Series] = []
        for name in Array(Set(entries.map(\.series))).sorted() {
            let mine = entries.filter { $0.series == name }
            for multiple in Array(Set(mine.map(\.multiple))).sorted() {
                let points = mine.filter { $0.multiple == multiple }.map { (x: Double($0.step ?? 0), y: $0.accuracy) }
                series.append(
                    Plot.Series(
                        name: (name == "model" ? "" : "\(name) ") + "\(Plot.format(multiple))L", points: points))
            }
        }
        return Plot.svg(
            title: "\(run): passkey accuracy at each length by training step", xLabel: "training step",
            yLabel: "accuracy (mean over depths)", series: series, logX: false, yIncludes: [0, 1],
            xValue: { "step \(Plot.format($0))" })
    }

    /// Alerts: a run's newest checkpoint with passkey results retrieves less, at some length and series, than the
    /// one before it by more than `threshold` (absolute accuracy, mean over depths).
    public func alerts(threshold: Double) -> [Alert] {
        var alerts: [Alert] = []
        let entries = byLength
        for run in Array(Set(entries.map(\.run))).sorted() {
            let mine = entries.filter { $0.run == run && $0.step != nil }
            let steps = Array(Set(mine.compactMap(\.step))).sorted()
            guard steps.count >= 2 else { continue }
            let (previous, newest) = (steps[steps.count - 2], steps[steps.count - 1])
            for now in mine where now.step == newest {
                guard
                    let before = mine.first(where: {
                        $0.step == previous && $0.series == now.series && $0.length == now.length
                    }), before.accuracy - now.accuracy > threshold
                else { continue }
                let drop = before.accuracy - now.accuracy
                let series = now.series == "model" ? "" : " (\(now.series))"
                alerts.append(
                    Alert(
                        kind: .passkey, run: run, series: now.series, step: newest, previousStep: previous,
                        checkpointID: now.checkpointID, multiple: now.multiple, value: drop, threshold: threshold,
                        message: String(
                            format: "%@%@: passkey accuracy at %@L (%d tokens) fell from %.0f%% at step %d to %.0f%% "
                                + "at step %d (more than %.0f points)", run, series, Alert.format(now.multiple),
                            now.length, before.accuracy * 100, previous, now.accuracy * 100, newest, threshold * 100)))
            }
        }
        return alerts
    }
}
