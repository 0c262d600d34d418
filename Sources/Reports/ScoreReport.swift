import Engine
import Evaluation
import Foundation

/// Renders `score`: every token's log-probability (unless summarised), then the headline numbers.
public struct ScoreReport: ResultReport {
    public var result: ScoreResult

    public init(_ result: ScoreResult) { self.result = result }

    /// Text for people.
    public func text() -> String {
        let r = result
        var lines: [String] = []
        if let ids = r.tokenIds, let logprobs = r.logprobs {
            lines.append("position  token  log-prob")
            for (index, (token, value)) in zip(ids, logprobs).enumerated() {
                lines.append(
                    String(format: "%8d  %5d  ", index, Int(token)) + (value.map { String(format: "%.6f", $0) } ?? "-"))
            }
            lines.append("")
        }
        let trained = r.checkpoint.trainedLength
        lines.append("checkpoint      \(r.checkpoint.checkpoint)")
        lines.append("architecture    \(r.checkpoint.architecture) (trained at \(trained) tokens)")
        lines.append(
            "window          \(r.length) tokens of \(r.data.path) from offset \(r.offset) "
                + "(\(String(format: "%.2f", Double(r.length) / Double(max(trained, 1))))× trained length)")
        lines.append("scored tokens   \(r.tokens)")
        lines.append(String(format: "mean NLL        %.6f nats", r.meanNLL))
        lines.append(String(format: "perplexity      %.4f", r.perplexity))
        lines.append(
            String(
                format: "time            %.2f s load, %.2f s forward (%.0f tokens/s)", r.loadSeconds, r.seconds,
                r.tokensPerSecond))
        lines.append("threads         \(r.threads) (OpenBLAS \(r.blasCore) kernels, ours \(r.kernels))")
        if r.precision == .bf16 {
            lines.append("precision       bf16 (products of bfloat16-rounded operands, fp32 accumulation; not exact)")
        }
        lines += r.notes.map { "note            \($0)" }
        return lines.joined(separator: "\n")
    }
}
