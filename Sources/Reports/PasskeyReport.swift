import Evaluation
import Foundation

/// `extrapolate passkey`'s output: a table of accuracy by length (rows) and depth (columns) per series, the JSON
/// document (the result itself), and CSV with one row per trial.
public struct PasskeyReport: ResultReport {
    public let result: PasskeyResult

    public init(_ result: PasskeyResult) { self.result = result }

    /// Accuracy per length and depth ("7/10"), the key's mean log-probability beside it, per series.
    public var text: String {
        var lines = [
            "passkey retrieval: \(result.checkpoint) (tokenizer \(result.tokenizer), trained length "
                + "\(result.trainedLength), \(result.trials) trials per cell, keys from seed \(result.seed))"
        ]
        let depths = result.depths
        for series in result.cells.map(\.series).reduce(into: [String](), { if !$0.contains($1) { $0.append($1) } }) {
            lines.append("")
            lines.append(series == "model" ? "the checkpoint as it is" : "with the \(series) rotary extension")
            let header = depths.map { TextColumns.pad("\(Self.percent($0))%", 16) }.joined()
            lines.append(TextColumns.pad("length", 8) + header)
            let cells = result.cells.filter { $0.series == series }
            for length in cells.map(\.length).reduce(into: [Int](), { if !$0.contains($1) { $0.append($1) } }) {
                var row = TextColumns.pad("\(length)", 8)
                for depth in depths {
                    guard let cell = cells.first(where: { $0.length == length && $0.depth == depth }) else { continue }
                    if cell.skipped != nil {
                        row += TextColumns.pad("skipped", 16)
                    } else {
                        let logp = cell.keyLogProbability.map { String(format: "%.2f", $0) } ?? "-"
                        row += TextColumns.pad("\(cell.retrieved)/\(cell.trials.count) (\(logp))", 16)
                    }
                }
                lines.append(row)
            }
        }
        lines.append("")
        lines.append(
            "retrieved/trials: greedy decoding would write the key (its token has the largest logit at each of its "
                + "positions, one teacher-forced pass); (x): the key's mean log-probability")
        var said: Set<String> = []
        for cell in result.cells {
            guard let reason = cell.skipped else { continue }
            // One line per series, length and reason (every depth of a short length is skipped for one reason).
            let series = cell.series == "model" ? "" : cell.series + " "
            let line = "skipped \(series)at length \(cell.length): \(reason)"
            if said.insert(line).inserted { lines.append(line) }
        }
        let rates = result.cells.filter { $0.skipped == nil }.map(\.tokensPerSecond)
        if !rates.isEmpty {
            lines.append(String(format: "%.0f tokens/s (median over cells)", rates.sorted()[rates.count / 2]))
        }
        return lines.joined(separator: "\n")
    }

    /// Accuracy by length (rows, shortest first) and depth (columns), one heatmap per series, stacked in one SVG
    /// document; each cell shows retrieved/trials, and on hover the accuracy, its Wilson interval and the key's mean
    /// log-probability.
    public func heatmapSVG(series name: String? = nil) -> String {
        let series = name ?? result.cells.first?.series ?? "model"
        let cells = result.cells.filter { $0.series == series }
        let lengths = cells.map(\.length).reduce(into: [Int]()) { if !$0.contains($1) { $0.append($1) } }
        let grid = lengths.map { length in
            result.depths.map { depth -> Plot.HeatCell in
                guard let cell = cells.first(where: { $0.length == length && $0.depth == depth }) else {
                    return Plot.HeatCell(value: nil, label: "", detail: "not run")
                }
                if let reason = cell.skipped {
                    return Plot.HeatCell(value: nil, label: "skipped", detail: reason)
                }
                let logp = cell.keyLogProbability.map { String(format: "%.3f", $0) } ?? "-"
                return Plot.HeatCell(
                    value: cell.accuracy, label: "\(cell.retrieved)/\(cell.trials.count)",
                    detail: String(
                        format: "length %d, depth %@%%: accuracy %.2f (95%% Wilson %.2f–%.2f), key log p %@",
                        length, Self.percent(depth), cell.accuracy, cell.lower, cell.upper, logp))
            }
        }
        let name = (result.checkpoint as NSString).lastPathComponent
        let trained = result.trainedLength
        return Plot.heatmap(
            title: "passkey retrieval: \(name)\(series == "model" ? "" : " with \(series)")",
            rowLabel: "length (tokens)", columnLabel: "depth of the key (% of the filler before it)",
            rows: lengths.map { "\($0)" + ($0 % trained == 0 ? " (\($0 / trained)×)" : "") },
            columns: result.depths.map { "\(Self.percent($0))%" }, cells: grid,
            note: "retrieved/trials (greedy decoding writes the key); \(result.trials) trials, seed \(result.seed)")
    }

    /// One row per trial.
    /// - Parameter header: start with the column names (off for the reports after the first in one file).
    public func csv(header: Bool = true) -> String {
        var rows =
            header
            ? ["checkpoint,series,length,depth,trial,key,positions,filler_characters,retrieved,key_log_probability"]
            : []
        for cell in result.cells {
            for (index, trial) in cell.trials.enumerated() {
                rows.append(
                    [
                        TextColumns.csvField(result.checkpoint), cell.series, "\(cell.length)",
                        Self.percent(cell.depth), "\(index)", "\(trial.key)", "\(trial.length)",
                        "\(trial.fillerCharacters)", trial.retrieved ? "1" : "0", "\(trial.keyLogProbability)",
                    ].joined(separator: ","))
            }
        }
        return rows.isEmpty ? "" : rows.joined(separator: "\n") + "\n"
    }

    /// 25 for 25.0, 12.5 for 12.5.
    static func percent(_ depth: Double) -> String {
        depth == depth.rounded() ? String(Int(depth)) : String(depth)
    }
}
