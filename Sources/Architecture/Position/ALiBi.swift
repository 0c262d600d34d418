import Foundation

/// ALiBi (Press, Smith & Lewis, ICLR 2022): `b_h(i,j) = −m_h·(i − j)` added to the scaled logits of every
/// layer; no position embedding anywhere (spec §7).
public struct ALiBi: Sendable, Hashable, Codable {
    /// MPT's `alibi_bias_max`; `nil` uses the paper/BLOOM rule. With 8 both rules give the same slopes.
    public var maxBias: Double?

    /// - Parameter maxBias: MPT's `alibi_bias_max`, or `nil` for the paper's slopes.
    public init(maxBias: Double? = nil) { self.maxBias = maxBias }

    /// Per-head slopes `m_h`, head order as in the checkpoint.
    public func slopes(heads: Int) -> [Double] {
        if let maxBias { return Self.mptSlopes(heads: heads, maxBias: maxBias) }
        return Self.paperSlopes(heads: heads)
    }

    /// The bias of a head with slope `slope` for query `query` and key `key ≤ query`.
    public func bias(slope: Double, query: Int, key: Int) -> Double { -slope * Double(query - key) }

    /// Paper/BLOOM slopes: `2^{−8h/H}` for a power of two `H`; otherwise all slopes of the closest lower
    /// power of two `p`, then every other slope of the `2p` set (`ofirpress/attention_with_linear_biases`).
    public static func paperSlopes(heads: Int) -> [Double] {
        guard heads > 0 else { return [] }
        func powerOfTwo(_ n: Int) -> [Double] { (1...n).map { exp2(-8 * Double($0) / Double(n)) } }
        let closest = 1 << (Int.bitWidth - 1 - heads.leadingZeroBitCount)
        if closest == heads { return powerOfTwo(heads) }
        let extra = powerOfTwo(2 * closest).enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
        return powerOfTwo(closest) + extra.prefix(heads - closest)
    }

    /// MPT slopes (`gen_slopes`, HF `build_mpt_alibi_tensor`): `q = 2^⌈log2 H⌉`, `m_k = 2^{−k·maxBias/q}`,
    /// `k = 1…q`; if `q ≠ H`, odd-indexed then even-indexed slopes, truncated to `H`.
    public static func mptSlopes(heads: Int, maxBias: Double) -> [Double] {
        guard heads > 0 else { return [] }
        var q = 1
        while q < heads { q <<= 1 }
        let all = (1...q).map { exp2(-Double($0) * maxBias / Double(q)) }
        if q == heads { return all }
        let reordered = stride(from: 1, to: q, by: 2).map { all[$0] } + stride(from: 0, to: q, by: 2).map { all[$0] }
        return Array(reordered.prefix(heads))
    }
}
