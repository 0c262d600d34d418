import Foundation

/// Inference-time extensions of RoPE frequencies (spec §5; HF `modeling_rope_utils.py`). Each maps
/// `(θ_k, factor s, original length, current length n)` to `(θ'_k, attention factor)`.
public enum RotaryScaling: Sendable, Hashable, Codable {
    /// Plain RoPE.
    case none
    /// Position interpolation (Chen et al. 2023): `θ_k / s`.
    case linear(factor: Double)
    /// Static NTK-aware: `base' = base · s^{d/(d−2)}`.
    case ntk(factor: Double)
    /// Dynamic NTK: `base' = base · (s·n/L − (s − 1))^{d/(d−2)}` with `n = max(length, L)`.
    case dynamic(factor: Double, originalLength: Int)
    /// YaRN (Peng et al. 2023): ramp between original and interpolated frequencies, attention factor.
    case yarn(YaRN)
    /// Llama 3.1: keep high frequencies, divide low ones by `s`, smooth between.
    case llama3(Llama3Scaling)
    /// LongRoPE: per-pair rescale factors, short list up to the original length, long list beyond.
    case longRoPE(LongRoPE)

    /// The scaling factor `s`, 1 for `.none`.
    public var factor: Double {
        switch self {
        case .none: 1
        case .linear(let s), .ntk(let s), .dynamic(let s, _): s
        case .yarn(let y): y.factor
        case .llama3(let l): l.factor
        case .longRoPE(let l): l.factor
        }
    }

    /// Short name (`linear`, `ntk`, `dynamic`, `yarn`, `llama3`, `longrope`, `none`).
    public var name: String {
        switch self {
        case .none: "none"
        case .linear: "linear"
        case .ntk: "ntk"
        case .dynamic: "dynamic"
        case .yarn: "yarn"
        case .llama3: "llama3"
        case .longRoPE: "longrope"
        }
    }

    /// The frequencies in force for a sequence of `length` tokens.
    public func apply(rotaryWidth d: Int, base: Double, length: Int) -> RotaryFrequencies {
        let plain = Rotary.defaultFrequencies(rotaryWidth: d, base: base)
        switch self {
        case .none:
            return RotaryFrequencies(inverse: plain, attentionFactor: 1)
        case .linear(let s):
            return RotaryFrequencies(inverse: plain.map { $0 / s }, attentionFactor: 1)
        case .ntk(let s):
            let scaled = base * pow(s, Double(d) / Double(d - 2))
            return RotaryFrequencies(
                inverse: Rotary.defaultFrequencies(rotaryWidth: d, base: scaled), attentionFactor: 1)
        case .dynamic(let s, let original):
            let n = Double(max(length, original))
            let scaled = base * pow(s * n / Double(original) - (s - 1), Double(d) / Double(d - 2))
            return RotaryFrequencies(
                inverse: Rotary.defaultFrequencies(rotaryWidth: d, base: scaled), attentionFactor: 1)
        case .yarn(let yarn):
            return yarn.apply(plain: plain, rotaryWidth: d, base: base)
        case .llama3(let llama3):
            return RotaryFrequencies(inverse: plain.map(llama3.apply), attentionFactor: 1)
        case .longRoPE(let longRoPE):
            return longRoPE.apply(plain: plain, length: length)
        }
    }
}

/// YaRN parameters (HF `_compute_yarn_parameters`).
public struct YaRN: Sendable, Hashable, Codable {
    /// Scale factor `s`.
    public var factor: Double
    /// The length the model was trained at, used for the correction range.
    public var originalLength: Int
    /// Rotations at which extrapolation stops (default 32).
    public var betaFast: Double
    /// Rotations at which interpolation starts (default 1).
    public var betaSlow: Double
    /// An explicit attention factor; `nil` derives it from `factor` (and `mscale`, `mscaleAllDim`).
    public var attentionFactor: Double?
    /// DeepSeek-style `mscale` numerator.
    public var mscale: Double?
    /// DeepSeek-style `mscale_all_dim` denominator.
    public var mscaleAllDim: Double?
    /// Whether the correction range is floored/ceiled to whole dimensions (HF default true).
    public var truncate: Bool

    /// YaRN with HF's defaults.
    public init(
        factor: Double, originalLength: Int, betaFast: Double = 32, betaSlow: Double = 1,
        attentionFactor: Double? = nil, mscale: Double? = nil, mscaleAllDim: Double? = nil, truncate: Bool = true
    ) {
        self.factor = factor
        self.originalLength = originalLength
        self.betaFast = betaFast
        self.betaSlow = betaSlow
        self.attentionFactor = attentionFactor
        self.mscale = mscale
        self.mscaleAllDim = mscaleAllDim
        self.truncate = truncate
    }

    /// `0.1·m·ln s + 1` for `s > 1`, else 1.
    static func magnitude(_ scale: Double, _ m: Double = 1) -> Double { scale <= 1 ? 1 : 0.1 * m * log(scale) + 1 }

    /// The attention factor in force (`0.1 ln s + 1` unless given).
    public var resolvedAttentionFactor: Double {
        if let attentionFactor { return attentionFactor }
        if let mscale, let mscaleAllDim, mscale != 0, mscaleAllDim != 0 {
            return Self.magnitude(factor, mscale) / Self.magnitude(factor, mscaleAllDim)
        }
        return Self.magnitude(factor)
    }

    /// The ramp bounds `(low, high)` in pair indices for rotary width `d` and `base`.
    public func correctionRange(rotaryWidth d: Int, base: Double) -> (low: Double, high: Double) {
        func dimension(_ rotations: Double) -> Double {
            Double(d) * log(Double(originalLength) / (rotations * 2 * .pi)) / (2 * log(base))
        }
        var (low, high) = (dimension(betaFast), dimension(betaSlow))
        if truncate { (low, high) = (low.rounded(.down), high.rounded(.up)) }
        return (max(low, 0), min(high, Double(d - 1)))
    }

    /// Ramp values `clamp((k − low)/(high − low), 0, 1)` for `k = 0…d/2 − 1`.
    public func ramp(rotaryWidth d: Int, base: Double) -> [Double] {
        var (low, high) = correctionRange(rotaryWidth: d, base: base)
        if low == high { high += 0.001 }
        return (0..<d / 2).map { min(max((Double($0) - low) / (high - low), 0), 1) }
    }

    func apply(plain: [Double], rotaryWidth d: Int, base: Double) -> RotaryFrequencies {
        let ramp = ramp(rotaryWidth: d, base: base)
        let inverse = zip(plain, ramp).map { theta, r in (1 - r) * theta + r * theta / factor }
        return RotaryFrequencies(inverse: inverse, attentionFactor: resolvedAttentionFactor)
    }
}

/// Llama 3.1 frequency rule (HF `_compute_llama3_parameters`).
public struct Llama3Scaling: Sendable, Hashable, Codable {
    /// Scale factor `s` (8 in Llama 3.1).
    public var factor: Double
    /// `low_freq_factor` (1).
    public var lowFrequencyFactor: Double
    /// `high_freq_factor` (4).
    public var highFrequencyFactor: Double
    /// `original_max_position_embeddings` (8192).
    public var originalLength: Int

    /// Llama 3.1's rule with HF's documented defaults.
    public init(
        factor: Double = 8, lowFrequencyFactor: Double = 1, highFrequencyFactor: Double = 4,
        originalLength: Int = 8192
    ) {
        self.factor = factor
        self.lowFrequencyFactor = lowFrequencyFactor
        self.highFrequencyFactor = highFrequencyFactor
        self.originalLength = originalLength
    }

    /// `θ'` for one frequency: keep if wavelength `< L/hf`, divide by `s` if `> L/lf`, smooth between.
    public func apply(_ theta: Double) -> Double {
        let wavelength = 2 * Double.pi / theta
        let original = Double(originalLength)
        if wavelength < original / highFrequencyFactor { return theta }
        if wavelength > original / lowFrequencyFactor { return theta / factor }
        let g = (original / wavelength - lowFrequencyFactor) / (highFrequencyFactor - lowFrequencyFactor)
        return (1 - g) * theta / factor + g * theta
    }
}

/// LongRoPE parameters (HF `_compute_longrope_parameters`).
public struct LongRoPE: Sendable, Hashable, Codable {
    /// Per-pair divisors used up to the original length.
    public var shortFactor: [Double]
    /// Per-pair divisors used beyond the original length.
    public var longFactor: [Double]
    /// Scale factor `s` (HF: `max_position_embeddings / original` when not given).
    public var factor: Double
    /// The original training length.
    public var originalLength: Int
    /// An explicit attention factor; `nil` derives `sqrt(1 + ln s / ln L)`.
    public var attentionFactor: Double?

    /// - Parameters: as in HF's `rope_scaling` for `longrope`.
    public init(
        shortFactor: [Double], longFactor: [Double], factor: Double, originalLength: Int,
        attentionFactor: Double? = nil
    ) {
        self.shortFactor = shortFactor
        self.longFactor = longFactor
        self.factor = factor
        self.originalLength = originalLength
        self.attentionFactor = attentionFactor
    }

    /// The attention factor in force.
    public var resolvedAttentionFactor: Double {
        attentionFactor ?? (factor <= 1 ? 1 : (1 + log(factor) / log(Double(originalLength))).squareRoot())
    }

    func apply(plain: [Double], length: Int) -> RotaryFrequencies {
        let divisors = length > originalLength ? longFactor : shortFactor
        let inverse = plain.enumerated().map { k, theta in theta / (k < divisors.count ? divisors[k] : 1) }
        return RotaryFrequencies(inverse: inverse, attentionFactor: resolvedAttentionFactor)
    }
}
