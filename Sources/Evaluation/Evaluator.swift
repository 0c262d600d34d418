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
    /// Window positions `lower..<upper` (0-based, the position of the predicting input); `upper` never passes the
    /// window length, so the last bucket is as wide as the positions it really holds.
    public var lower: Int
    public var upper: Int
    /// Targets scored at these positions, and how many windows they came from.
    public var tokens: Int
    public var windows: Int
    public var meanNLL: Double
    /// Whether only the first window of each segment (stream or document) reaches these positions: true under
    /// `sliding:S` for positions before `L − S`, so the bucket describes far fewer, and earlier, tokens.
    public var firstWindowsOnly: Bool
}

/// The result of evaluating one model at one window length under one protocol.
public struct EvaluationResult: Sendable, Hashable, Codable {
    public var length: Int
    /// The protocol, as the options write it (`nonoverlapping`, `sliding:16`, `last-half`).
    public var evaluationProtocol: EvaluationProtocol
    public var bos: BOSPlacement
    public var perDocument: Bool
    /// Scored targets.
    public var tokens: Int
    /// Σ NLL in nats (Float64).
    public var nllSum: Double
    /// Token-weighted mean NLL, nats.
    public var meanNLL: Double
    /// `exp(meanNLL)`: the headline perplexity (token-weighted).
    public var perplexity: Double
    /// Bits per byte, for byte-level data (`meanNLL / ln 2`).
    public var bitsPerByte: Double?
    /// `exp(mean over windows of the window's mean NLL)`: YaRN's scripts' variant, reported separately.
    public var windowAveragedPerplexity: Double
    public var windows: [WindowScore]
    /// Mean NLL by window position, log-spaced buckets `[2^k − 1, 2^{k+1} − 1)` (the last cut at the length).
    public var positions: [PositionBucket]
    public var seconds: Double
    /// Windows whose scores were taken, exactly, from a longer length's pass (prefix sharing); `nil` when none were.
    public var sharedWindows: Int?

    enum CodingKeys: String, CodingKey {
        case length, evaluationProtocol = "protocol", bos, perDocument, tokens, nllSum, meanNLL, perplexity, bitsPerByte
        case windowAveragedPerplexity, windows, positions, seconds, sharedWindows
    }

    init(
        options: WindowOptions, windows: [WindowScore], positions: [PositionBucket], byteLevel: Bool, seconds: Double,
        sharedWindows: Int = 0
    ) {
        length = options.length
        evaluationProtocol = options.protocolKind
        bos = options.bos
        perDocument = options.perDocument
        nllSum = windows.reduce(0.0) { $0 + $1.nll }
        tokens = windows.reduce(0) { $0 + $1.tokens }
        meanNLL = nllSum / Double(max(tokens, 1))
        perplexity = exp(meanNLL)
        bitsPerByte = byteLevel ? meanNLL / log(2) : nil
        let means = windows.filter { $0.tokens > 0 }.map { $0.nll / Double($0.tokens) }
        windowAveragedPerplexity = exp(means.reduce(0, +) / Double(max(means.count, 1)))
        self.windows = windows
        self.positions = positions
        self.seconds = seconds
        self.sharedWindows = sharedWindows > 0 ? sharedWindows : nil
    }
}

/// Runs a model over the windows of a protocol and adds up the NLL.
public enum Evaluator {
    /// Scores `tokens` (a span of the stream, documents starting at `documentStarts`) with `model`.
    /// - Parameters:
    ///   - sharing: when given (for a prefix-stable model, lengths run longest first), windows a longer pass
    ///     covered are taken from it instead of run, and every window run here is offered to shorter lengths.
    ///   - progress: called after each window with (windows done, windows total).
    /// - Throws: `EvaluationError` for bad options and for what the engine refuses (length, tokens, memory).
    public static func evaluate(
        model: LanguageModel, tokens: [Int32], documentStarts: [Int] = [0], options: WindowOptions,
        byteLevel: Bool = false, sharing: PrefixSharing? = nil,
        progress: ((Int, Int) -> Void)? = nil
    ) throws(EvaluationError) -> EvaluationResult {
        let started = Date()
        let plan = try WindowPlan.windows(count: tokens.count, documentStarts: documentStarts, options: options)
        guard !plan.isEmpty else { throw .tooFewTokens(available: tokens.count, needed: 2) }
        let shared = sharing?.take(length: options.length, plan: plan) ?? [:]
        var windows: [WindowScore] = []
        var buckets = BucketSums()
        for (index, window) in plan.enumerated() {
            let p = window.bos ? 1 : 0
            let firstTarget = window.inputs.lowerBound + 1 - p
            // The scored targets' log-probabilities, `scored[i]` for stream target `window.scored.lowerBound + i`.
            let scored: [Double]
            if let values = shared[index] {
                scored = values
            } else {
                var inputs = Array(tokens[window.inputs])
                if window.bos, let bos = options.bosToken { inputs.insert(bos, at: 0) }
                let targets = Array(tokens[firstTarget...window.scored.upperBound])
                let logprobs: [Double]
                do { logprobs = try model.logProbabilities(inputs: inputs, targets: targets) } catch {
                    throw .engine(error)
                }
                sharing?.offer(window: window, logprobs: logprobs, length: options.length)
                scored = Array(logprobs[(window.scored.lowerBound - firstTarget)...])
            }
            var sum = 0.0
            buckets.beginWindow(first: index == 0 || plan[index - 1].document != window.document)
            for (offset, target) in window.scored.enumerated() {
                let position = target - firstTarget
                sum -= scored[offset]
                buckets.add(position: position, nll: -scored[offset])
            }
            windows.append(
                WindowScore(
                    start: window.inputs.lowerBound, document: window.document, nll: sum, tokens: window.scored.count))
            progress?(index + 1, plan.count)
        }
        return EvaluationResult(
            options: options, windows: windows, positions: buckets.buckets(length: options.length),
            byteLevel: byteLevel, seconds: Date().timeIntervalSince(started), sharedWindows: shared.count)
    }
}

/// Per-position NLL sums in log₂-spaced buckets, with which windows reached each bucket.
struct BucketSums {
    private var sums: [Double] = [], counts: [Int] = [], windows: [Int] = [], laterWindows: [Int] = []
    /// The last bucket the current window added to (positions only grow within a window).
    private var current = -1
    private var first = true

    mutating func beginWindow(first: Bool) {
        self.first = first
        current = -1
    }

    mutating func add(position: Int, nll: Double) {
        let bucket = Int.bitWidth - 1 - (position + 1).leadingZeroBitCount
        while sums.count <= bucket { sums.append(0); counts.append(0); windows.append(0); laterWindows.append(0) }
        sums[bucket] += nll
        counts[bucket] += 1
        if bucket != current {
            current = bucket
            windows[bucket] += 1
            if !first { laterWindows[bucket] += 1 }
        }
    }

    func buckets(length: Int) -> [PositionBucket] {
        let later = laterWindows.max() ?? 0
        return sums.indices.compactMap { k -> PositionBucket? in
            guard counts[k] > 0 else { return nil }
            return PositionBucket(
                lower: (1 << k) - 1, upper: min((1 << (k + 1)) - 1, length), tokens: counts[k],
                windows: windows[k], meanNLL: sums[k] / Double(counts[k]),
                firstWindowsOnly: later > 0 && laterWindows[k] == 0)
        }
    }
}
