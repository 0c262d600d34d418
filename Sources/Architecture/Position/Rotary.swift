import Foundation

/// Rotary position embedding (Su et al. 2021; spec §4): q and k of every layer are rotated pairwise by
/// angle `p·θ_k`, `θ_k = base^{−2k/d_rot}`, `k = 0…d_rot/2 − 1`; dimensions past `d_rot` pass through.
public struct Rotary: Sendable, Hashable, Codable {
    /// How many dimensions of each head rotate.
    public var width: RotaryWidth
    /// The frequency base (`rope_theta`, `rotary_emb_base`).
    public var base: Double
    /// Which dimensions are paired.
    public var layout: RotaryLayout
    /// An inference-time extension of the frequencies (`.none` for plain RoPE).
    public var scaling: RotaryScaling

    /// - Parameters:
    ///   - width: rotated dimensions per head (`.fraction(0.25)` for GPT-NeoX, `.count(64)` for GPT-J).
    ///   - base: frequency base.
    ///   - layout: `.halfSplit` (GPT-NeoX, HF Llama) or `.interleaved` (GPT-J, Meta's Llama code).
    ///   - scaling: an inference-time extension.
    public init(
        width: RotaryWidth = .fraction(1), base: Double = 10000, layout: RotaryLayout = .halfSplit,
        scaling: RotaryScaling = .none
    ) {
        self.width = width
        self.base = base
        self.layout = layout
        self.scaling = scaling
    }

    /// Rotated dimensions `d_rot` for a head of width `headWidth` (HF: `int(head_dim · fraction)`).
    public func rotaryWidth(headWidth: Int) -> Int {
        switch width {
        case .fraction(let fraction): Int(Double(headWidth) * fraction)
        case .count(let count): count
        }
    }

    /// Plain RoPE inverse frequencies `θ_k = base^{−2k/d}` (HF `_compute_default_rope_parameters`).
    public static func defaultFrequencies(rotaryWidth d: Int, base: Double) -> [Double] {
        stride(from: 0, to: d, by: 2).map { 1 / pow(base, Double($0) / Double(d)) }
    }

    /// The frequencies and attention factor in force for a sequence of `length` tokens, after `scaling`.
    /// - Returns: `d_rot/2` inverse frequencies and the factor that multiplies both cos and sin.
    public func frequencies(headWidth: Int, length: Int) -> RotaryFrequencies {
        scaling.apply(rotaryWidth: rotaryWidth(headWidth: headWidth), base: base, length: length)
    }

    /// Rotates the first `d_rot` entries of `vector` (one head of q or k) to position `position`.
    /// - Parameters:
    ///   - vector: `[hs]` values.
    ///   - frequencies: from `frequencies(headWidth:length:)`.
    /// - Returns: `[hs]` values, `x' = a·(x ⊙ cos + rotate(x) ⊙ sin)` on the rotated part.
    public func rotate(_ vector: [Double], position: Int, frequencies: RotaryFrequencies) -> [Double] {
        var out = vector
        let half = frequencies.inverse.count
        let factor = frequencies.attentionFactor
        for k in 0..<half {
            let angle = Double(position) * frequencies.inverse[k]
            let (c, s) = (cos(angle) * factor, sin(angle) * factor)
            let (a, b) = layout == .halfSplit ? (k, k + half) : (2 * k, 2 * k + 1)
            out[a] = vector[a] * c - vector[b] * s
            out[b] = vector[b] * c + vector[a] * s
        }
        for index in 2 * half..<vector.count { out[index] = vector[index] }
        return out
    }
}

/// How many dimensions of each head rotate.
public enum RotaryWidth: Sendable, Hashable, Codable {
    /// A fraction of the head width (`rotary_pct`, `partial_rotary_factor`).
    case fraction(Double)
    /// An absolute count (`rotary_dim`).
    case count(Int)
}

/// Which dimensions a rotation pairs (spec §4). A checkpoint evaluated with the other layout gives garbage.
public enum RotaryLayout: String, Sendable, Hashable, Codable {
    /// Dimension `k` with `k + d_rot/2` (`rotate_half`).
    case halfSplit
    /// Dimension `2k` with `2k + 1` (`rotate_every_two`).
    case interleaved
}

/// Inverse frequencies in force plus the factor that multiplies cos and sin (logits scale by its square).
public struct RotaryFrequencies: Sendable, Hashable, Codable {
    /// `θ'_k`, `d_rot/2` values.
    public var inverse: [Double]
    /// Multiplies cos and sin (`attention_scaling` in HF); 1 unless YaRN or LongRoPE.
    public var attentionFactor: Double
}
