import Foundation

/// T5 relative position bias (Raffel et al. 2020; HF `_relative_position_bucket`; spec §6): a learned
/// table `E[buckets, H]`, `b_h(i,j) = E[bucket(j − i), h]`, no `1/sqrt(d_h)` in T5 itself.
public struct T5Bias: Sendable, Hashable, Codable {
    /// Number of buckets (32).
    public var buckets: Int
    /// Distance at which the log-spaced buckets end (128); farther keys share the last bucket.
    public var maxDistance: Int
    /// Whether future keys get buckets of their own (encoder) or collapse to 0 (decoder, causal).
    public var bidirectional: Bool
    /// Whether one table serves every layer (T5: the first layer owns it).
    public var shared: Bool
    /// Checkpoint name of the table; absolute when shared, inside the attention scope otherwise.
    public var key: String

    /// - Parameters: T5's defaults are 32 buckets, max distance 128, causal, shared.
    public init(
        buckets: Int = 32, maxDistance: Int = 128, bidirectional: Bool = false, shared: Bool = true,
        key: String = "relative_attention_bias"
    ) {
        self.buckets = buckets
        self.maxDistance = maxDistance
        self.bidirectional = bidirectional
        self.shared = shared
        self.key = key
    }

    /// The bucket of relative position `relative = j − i`.
    ///
    /// The log-spaced branch is computed in `Float` as `transformers` does in float32, so bucket
    /// boundaries land where the reference puts them.
    public func bucket(relative: Int) -> Int {
        var halves = buckets
        var offset = 0
        let n: Int
        if bidirectional {
            halves /= 2
            if relative > 0 { offset = halves }
            n = abs(relative)
        } else {
            n = max(-relative, 0)
        }
        let maxExact = halves / 2
        if n < maxExact { return offset + n }
        let ratio = Float(log(Double(maxDistance) / Double(maxExact)))
        let scaled = logf(Float(n) / Float(maxExact)) / ratio * Float(halves - maxExact)
        return offset + min(maxExact + Int(scaled), halves - 1)
    }

    /// The first distance `d = i − j` of every causal bucket (bucket boundaries), up to `limit`.
    public func boundaries(limit: Int = 100_000) -> [Int] {
        var starts: [Int] = []
        var last = -1
        for d in 0...limit {
            let b = bucket(relative: -d)
            if b != last { starts.append(d); last = b }
            if b == (bidirectional ? buckets / 2 : buckets) - 1 { break }
        }
        return starts
    }
}

/// KERPLE (Chi et al. 2022; `chijames/KERPLE`; spec §8): per-head learned `r1, r2 > 0`.
public struct Kerple: Sendable, Hashable, Codable {
    /// The kernel.
    public var kernel: KerpleKernel

    /// - Parameter kernel: `.logarithmic` or `.power`.
    public init(_ kernel: KerpleKernel = .logarithmic) { self.kernel = kernel }

    /// `−r1·ln(1 + r2·d)` (log) or `−r1·d^{r2}` (power) for distance `d = i − j ≥ 0`.
    public func bias(r1: Double, r2: Double, distance d: Int) -> Double {
        switch kernel {
        case .logarithmic: -r1 * log(1 + r2 * Double(d))
        case .power: -r1 * pow(Double(d), r2)
        }
    }
}

/// KERPLE's two kernels.
public enum KerpleKernel: String, Sendable, Hashable, Codable {
    /// `−r1·ln(1 + r2·d)`.
    case logarithmic
    /// `−r1·d^{r2}`, `0 < r2 ≤ 2`.
    case power
}

/// FIRE (Li et al. 2023; spec §9): `b(i,j) = f_θ(ψ(i−j) / ψ(max(L, i)))`, `ψ(x) = ln(c·x + 1)`, `f_θ` an
/// MLP `1 → hidden → H` with ReLU; `c` and `L = |L_mult·L_init|` learned.
public struct Fire: Sendable, Hashable, Codable {
    /// Hidden width of `f_θ` (32).
    public var hidden: Int
    /// `L_init` (512), the frozen base of the learned threshold.
    public var initialThreshold: Double
    /// Added to the denominator (1e-6).
    public var epsilon: Double

    /// - Parameters: FIRE's defaults.
    public init(hidden: Int = 32, initialThreshold: Double = 512, epsilon: Double = 1e-6) {
        self.hidden = hidden
        self.initialThreshold = initialThreshold
        self.epsilon = epsilon
    }

    /// The normalised input `ψ(i − j) / (ψ(max(L, i)) + ε)`, in `[0, 1]` at any length.
    public func normalizedInput(query i: Int, key j: Int, c: Double, thresholdMultiplier: Double) -> Double {
        let threshold = abs(thresholdMultiplier * initialThreshold)
        func psi(_ x: Double) -> Double { log(c * x + 1) }
        return psi(Double(i - j)) / (psi(max(threshold, Double(i))) + epsilon)
    }

    /// `f_θ(x)` for all heads: `W2·relu(W1·x + b1) + b2`.
    /// - Parameters: `w1 [hidden]` (the `[hidden, 1]` matrix), `b1 [hidden]`, `w2 [H, hidden]` row-major, `b2 [H]`.
    /// - Returns: `[H]` biases.
    public func mlp(_ x: Double, w1: [Double], b1: [Double], w2: [Double], b2: [Double]) -> [Double] {
        let h = zip(w1, b1).map { max($0 * x + $1, 0) }
        return b2.indices.map { head in
            b2[head] + h.indices.reduce(0) { $0 + w2[head * h.count + $1] * h[$1] }
        }
    }
}

/// Sandwich (Chi et al. 2022; NeMo port; spec §11), parameter-free:
/// `b_h(r) = (S(r) − d'/2) / (h·8/H)`, `S(r) = Σ_{k=1}^{d'/2} cos(r·10000^{−2k/d'})`, `r = j − i`.
public struct Sandwich: Sendable, Hashable, Codable {
    /// `d'`, the width of the sinusoids summed.
    public var dimension: Int

    /// - Parameter dimension: `d'` (commonly the head width).
    public init(dimension: Int) { self.dimension = dimension }

    /// The bias of head `head` (1-based, as in the spec) of `heads` at distance `d = i − j`.
    public func bias(head: Int, heads: Int, distance d: Int) -> Double {
        let half = dimension / 2
        let r = Double(-d)
        let sum = (1...max(half, 1)).reduce(0.0) { acc, k in
            acc + cos(r * pow(10000, -2 * Double(k) / Double(dimension)))
        }
        return (sum - Double(half)) / (Double(head) * 8 / Double(heads))
    }
}
