import Foundation

/// Two checkpoints scored on exactly the same windows, and the paired bootstrap of their difference.
public struct CheckpointComparison: Sendable, Hashable, Codable {
    public var settings: EvaluationSettings
    public var data: DataReference
    public var length: Int
    /// Each side's checkpoint and headline numbers.
    public var a: Side
    public var b: Side
    /// Mean NLL of B minus A (nats; negative: B is better), B / A perplexity, and the paired interval.
    public var meanNLLDifference: Double
    public var perplexityRatio: Double
    public var interval: Interval
    /// Fraction of resamples in which B's mean NLL was lower than A's.
    public var fractionBBetter: Double
    public var warnings: [String]

    /// One checkpoint of a comparison.
    public struct Side: Sendable, Hashable, Codable {
        public var checkpoint: CheckpointSummary
        public var perplexity: Double
        public var meanNLL: Double
        public var tokens: Int
        public var seconds: Double
    }
}

/// Paired comparisons of two checkpoints.
public enum Comparison {
    /// Evaluates `a` and `b` at `length` (default: A's trained length) on `data`, and compares them.
    /// - Throws: `EvaluationError` when a checkpoint does not support the length or a pass fails.
    public static func run(
        _ a: SweepCheckpoint, _ b: SweepCheckpoint, length: Int?, settings: EvaluationSettings, data: EvaluationData
    ) throws(EvaluationError) -> CheckpointComparison {
        let length = length ?? a.summary.trainedLength
        for side in [a, b] {
            if case .unsupported(let reason) = side.model.support(at: length) {
                throw .invalidOptions("\(side.summary.checkpoint): length \(length) is not supported: \(reason)")
            }
        }
        let options = settings.windowOptions(length: length)
        let ra = try Evaluator.evaluate(
            model: a.model, tokens: data.tokens, documentStarts: data.documentStarts,
            options: options, byteLevel: data.byteLevel)
        let rb = try Evaluator.evaluate(
            model: b.model, tokens: data.tokens, documentStarts: data.documentStarts,
            options: options, byteLevel: data.byteLevel)
        let paired: PairedComparison
        do { paired = try Bootstrap.compare(ra, rb, resamples: max(settings.resamples, 10), seed: settings.seed) } catch
        {
            throw .invalidOptions("\(error)")
        }
        let (units, unit) = Bootstrap.unitCount(ra)
        let note = Bootstrap.note(units: units, unit: unit, resamples: max(settings.resamples, 10))
        func side(_ checkpoint: SweepCheckpoint, _ r: EvaluationResult) -> CheckpointComparison.Side {
            CheckpointComparison.Side(
                checkpoint: checkpoint.summary, perplexity: r.perplexity, meanNLL: r.meanNLL, tokens: r.tokens,
                seconds: r.seconds)
        }
        return CheckpointComparison(
            settings: settings, data: data.reference, length: length, a: side(a, ra), b: side(b, rb),
            meanNLLDifference: paired.meanDifference, perplexityRatio: paired.perplexityRatio,
            interval: paired.interval, fractionBBetter: paired.fractionBBetter,
            warnings: note.map { [$0] } ?? [])
    }
}
