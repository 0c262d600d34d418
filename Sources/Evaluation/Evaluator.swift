import Engine
import Foundation

/// The NLL of one window's scored targets.
public struct WindowScore: Sendable, Hashable, Codable {
    /// First stream input of the window.
    public var start: Int
    /// Document index (per-document evaluation), else 0.
    public var document: Int
    /// Sum of the scored targets' NLL, nats.
    public var nll: Double
    /// Number of scored targets.
    public var tokens: Int
}

/// Mean NLL over one range of window positions.
public struct PositionBucket: Sendable, Hashable, Codable {
    /// Window positions `lower..<upper` (0-based, the position of the predicting input).
    public var lower: Int
    public var upper: Int
    public var tokens: Int
    public var meanNLL: Double
}

/// The result of evaluating one model at one window length under one protocol.
public struct EvaluationResult: Sendable, Hashable, Codable {
    public var length: Int
    public var protocolName: String
    public var bos: BOSPlacement
    public var perDocument: Bool
    /// Scored targets.
    public var tokens: Int
    /// Σ NLL in nats (Float64).
    public var nllSum: Double
    /// Token-weighted mean NLL, nats.
    public var meanNLL: Double { nllSum / Double(max(tokens, 1)) }
    /// `exp(meanNLL)`: the headline perplexity (token-weighted).
    public var perplexity: Double { exp(meanNLL) }
    /// Bits per byte, for byte-level data (`meanNLL / ln 2`).
    public var bitsPerByte: Double?
    /// `exp(mean over windows of the window's mean NLL)`: YaRN's scripts' variant, reported separately.
    public var windowAveragedPerplexity: Double {
        let means = windows.filter { $0.tokens > 0 }.map { $0.nll / Double($0.tokens) }
        return exp(means.reduce(0, +) / Double(max(means.count, 1)))
    }
    public var windows: [WindowScore]
    /// Mean NLL by window position, log-spaced buckets `[2^k − 1, 2^{k+1} − 1)`.
    public var positions: [PositionBucket]
    public var seconds: Double
}

public enum Evaluator {
    /// Scores `tokens` (a span of the stream, documents starting at `documentStarts`) with `model`.
    /// - Parameter progress: called after each window with (windows done, windows total).
    public static func evaluate(
        model: LanguageModel, tokens: [Int32], documentStarts: [Int] = [0], options: WindowOptions, byteLevel: Bool = false,
        progress: ((Int, Int) -> Void)? = nil
    ) throws -> EvaluationResult {
        let started = Date()
        let plan = try WindowPlan.windows(count: tokens.count, documentStarts: documentStarts, options: options)
        guard !plan.isEmpty else { throw EvaluationError.tooFewTokens(available: tokens.count, needed: 2) }
        var windows: [WindowScore] = []
        var bucketSums: [Double] = [], bucketCounts: [Int] = []
        for (index, window) in plan.enumerated() {
            let p = window.bos ? 1 : 0
            var inputs = Array(tokens[window.inputs])
            if window.bos, let bos = options.bosToken { inputs.insert(bos, at: 0) }
            let firstTarget = window.inputs.lowerBound + 1 - p
            let targets = Array(tokens[firstTarget...window.scored.upperBound])
            let logprobs = try model.logProbabilities(inputs: inputs, targets: targets)
            var sum = 0.0
            for target in window.scored {
                let position = target - firstTarget
                let nll = -logprobs[position]
                sum += nll
                let bucket = Int.bitWidth - 1 - (position + 1).leadingZeroBitCount
                while bucketSums.count <= bucket { bucketSums.append(0); bucketCounts.append(0) }
                bucketSums[bucket] += nll
                bucketCounts[bucket] += 1
            }
            windows.append(WindowScore(start: window.inputs.lowerBound, document: window.document, nll: sum, tokens: window.scored.count))
            progress?(index + 1, plan.count)
        }
        let positions = bucketSums.indices.compactMap { k -> PositionBucket? in
            guard bucketCounts[k] > 0 else { return nil }
            return PositionBucket(lower: (1 << k) - 1, upper: (1 << (k + 1)) - 1, tokens: bucketCounts[k],
                                  meanNLL: bucketSums[k] / Double(bucketCounts[k]))
        }
        let total = windows.reduce(0.0) { $0 + $1.nll }
        let count = windows.reduce(0) { $0 + $1.tokens }
        return EvaluationResult(
            length: options.length, protocolName: options.protocolKind.description, bos: options.bos, perDocument: options.perDocument,
            tokens: count, nllSum: total, bitsPerByte: byteLevel ? total / Double(max(count, 1)) / log(2) : nil,
            windows: windows, positions: positions, seconds: Date().timeIntervalSince(started))
    }
}
