import Evaluation
import Foundation

/// Renders a sweep: the table people read, CSV, JSON, and the two plots (perplexity by length, loss by position).
public struct SweepReport: ResultReport {
    public var result: SweepResult

    public init(_ result: SweepResult) { self.result = result }

    /// One row per checkpoint, series and length.
    public func table() -> String {
        typealias C = TextColumns
        let protocolName = result.protocolName
        let width = max(12, (result.points.map { $0.label(protocolName: protocolName).count }.max() ?? 0) + 2)
        var lines = ["\(result.data.path): \(result.targets) targets at every length, protocol \(protocolName)", ""]
        let bits = result.points.contains { $0.result?.bitsPerByte != nil }
        var header =
            C.pad("checkpoint", width, left: true) + C.pad("length", 8) + C.pad("×trained", 9) + C.pad("tokens", 9)
        header +=
            C.pad("NLL", 10) + C.pad("perplexity", 13) + "  " + C.pad("95% CI", 25, left: true) + C.pad("seconds", 8)
        lines.append(header + (bits ? C.pad("bits/byte", 11) : ""))
        var warnings: [String] = []
        for point in result.points {
            let prefix =
                C.pad(point.label(protocolName: protocolName), width, left: true) + C.pad("\(point.length)", 8)
                + C.pad(String(format: "%.2f", point.multiple), 9)
            guard let r = point.result else {
                lines.append(prefix + "  unsupported: " + (point.unsupported ?? "?"))
                continue
            }
            let interval = point.interval.map { String(format: "[%.4g, %.4g]", $0.lower, $0.upper) } ?? "-"
            let flag = point.warnings.isEmpty ? "" : " *"
            var line = prefix + C.pad("\(r.tokens)", 9) + C.pad(String(format: "%.4f", r.meanNLL), 10)
            line += C.pad(String(format: "%.4g", r.perplexity), 13) + "  " + C.pad(interval + flag, 25, left: true)
            line +=
                C.pad(String(format: "%.1f", r.seconds), 8)
                + (r.bitsPerByte.map { C.pad(String(format: "%.4f", $0), 11) } ?? "")
            lines.append(line)
            warnings += point.warnings.map { "* at \(point.length) tokens: \($0)" }.filter { !warnings.contains($0) }
        }
        lines.append("")
        let evaluated = result.points.contains { $0.result != nil }
        lines.append(
            evaluated
                ? "perplexity = exp(token-weighted mean NLL); 95% CI: bootstrap over windows"
                : "no length could be evaluated")
        return (lines + warnings).joined(separator: "\n")
    }

    /// One row per checkpoint, series and length.
    public func csv() -> String {
        let rows = result.points.map {
            ResultCSV.row($0, evaluationProtocol: result.settings.evaluationProtocol.description)
        }
        return ([ResultCSV.header] + rows).joined(separator: "\n") + "\n"
    }

    /// Series in checkpoint order, each point's label kept once.
    private var seriesLabels: [String] {
        result.points.map { $0.label(protocolName: result.protocolName) }
            .reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
    }

    /// Perplexity against window length: one line per checkpoint (and extension), 95% intervals as bands.
    /// With one trained length the x axis is in tokens with L marked; the title names the protocol and data.
    public func perplexitySVG() -> String {
        let series = seriesLabels.map { label in
            let points = result.points.filter { $0.label(protocolName: result.protocolName) == label }
            return Plot.Series(
                name: label,
                points: points.compactMap { p in p.perplexity.map { (x: Double(p.length), y: $0) } },
                band: points.compactMap { p in
                    p.interval.map { (x: Double(p.length), lower: $0.lower, upper: $0.upper) }
                })
        }
        let trained = Set(result.checkpoints.map(\.trainedLength)).sorted()
        let data = (result.data.path as NSString).lastPathComponent
        return Plot.svg(
            title: "perplexity by window length (\(data), \(result.protocolName))",
            xLabel: "window length (tokens, log scale)", yLabel: "perplexity (log scale)", series: series, logY: true,
            markers: trained.map { (Double($0), trained.count == 1 ? "trained length" : "L = \($0)") })
    }

    /// Mean NLL by position in the window, at each checkpoint's longest evaluated length. Each bucket is drawn at
    /// the middle of the positions it holds; buckets that only the first window of a segment reaches (`sliding:S`
    /// before L − S) are hollow.
    public func positionsSVG() -> String {
        let plain = result.points.filter { $0.series == result.protocolName && $0.result != nil }
        let one = Set(plain.map(\.checkpoint)).count == 1
        // One checkpoint: every length. Several: each checkpoint at its longest length, in checkpoint order.
        let chosen =
            one
            ? plain
            : result.checkpoints.compactMap { c in
                plain.filter { $0.checkpoint == c.checkpoint }.max { $0.length < $1.length }
            }
        let series = chosen.compactMap { p -> Plot.Series? in
            guard let buckets = p.result?.positions else { return nil }
            let name = one ? "L = \(p.length)" : "\(p.label(protocolName: result.protocolName)), L = \(p.length)"
            return Plot.Series(
                name: name,
                points: buckets.map { (x: (Double($0.lower) + Double($0.upper - 1)) / 2 + 1, y: $0.meanNLL) },
                hollow: Set(buckets.indices.filter { buckets[$0].firstWindowsOnly }))
        }
        let trained = Set(result.checkpoints.map(\.trainedLength)).sorted()
        return Plot.svg(
            title: "loss by position in the window (\(result.protocolName))",
            xLabel: "position in window + 1 (log scale; hollow: first windows only)", yLabel: "mean NLL (nats)",
            series: series, markers: trained.map { (Double($0), trained.count == 1 ? "trained length" : "L = \($0)") })
    }
}
