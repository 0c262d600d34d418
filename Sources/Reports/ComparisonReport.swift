import Evaluation
import Foundation

/// Renders `compare`.
public struct ComparisonReport: ResultReport {
    public var result: CheckpointComparison

    public init(_ result: CheckpointComparison) { self.result = result }

    /// Text for people.
    public func text() -> String {
        let r = result
        let i = r.interval
        var lines = [
            "A  \(r.a.checkpoint.checkpoint): perplexity \(String(format: "%.4f", r.a.perplexity))",
            "B  \(r.b.checkpoint.checkpoint): perplexity \(String(format: "%.4f", r.b.perplexity))",
            "\(r.a.tokens) targets of \(r.data.path), windows of \(r.length), \(r.settings.evaluationProtocol)",
            String(format: "B − A mean NLL  %+.5f nats  95%% CI [%+.5f, %+.5f]", r.meanNLLDifference, i.lower, i.upper)
                + " (paired bootstrap over \(i.units) \(i.unit), \(i.resamples) resamples, seed \(i.seed))",
            String(
                format: "B / A perplexity %.4f; B better in %.1f%% of resamples", r.perplexityRatio,
                100 * r.fractionBBetter),
        ]
        lines += r.warnings.map { "warning: \($0)" }
        return lines.joined(separator: "\n")
    }
}
