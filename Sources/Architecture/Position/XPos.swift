import Foundation

/// xPos (Sun et al. 2022; `microsoft/torchscale` `XPOS`; spec §10): interleaved RoPE plus a per-pair
/// decay — query at `n` scaled by `ζ_k^{n/B}`, key at `m` by `ζ_k^{−m/B}`, `ζ_k = (2k + γ·hs)/((1+γ)·hs)`.
public struct XPos: Sendable, Hashable, Codable {
    /// `B`, the scale base (512 in torchscale, 2048 in NeMo).
    public var scaleBase: Double
    /// `γ` (0.4).
    public var gamma: Double
    /// Rotation base (10000).
    public var base: Double

    /// - Parameters: torchscale's defaults.
    public init(scaleBase: Double = 512, gamma: Double = 0.4, base: Double = 10000) {
        self.scaleBase = scaleBase
        self.gamma = gamma
        self.base = base
    }

    /// Per-pair decay bases `ζ_k`, `k = 0…hs/2 − 1`.
    public func pairScales(headWidth hs: Int) -> [Double] {
        stride(from: 0, to: hs, by: 2).map { (Double($0) + gamma * Double(hs)) / ((1 + gamma) * Double(hs)) }
    }

    /// The position that scales by 1 in a sequence of `length` tokens. torchscale's scale positions start
    /// at `-(length) // 2` in Python, i.e. `−⌈length/2⌉` (floor division of a negative number), so the
    /// centre is `⌈length/2⌉`; the spec's `⌊·⌋` differs for odd lengths and the reference wins.
    public func centre(length: Int) -> Int { (length + 1) / 2 }

    /// The multiplier of pair `k` at `position` for a query (`ζ^{p/B}`) or a key (`ζ^{−p/B}`), centred.
    public func scale(pair k: Int, headWidth hs: Int, position: Int, length: Int, query: Bool) -> Double {
        let p = Double(position - centre(length: length)) / scaleBase
        return pow(pairScales(headWidth: hs)[k], query ? p : -p)
    }

    /// The rotary part: interleaved RoPE over the whole head.
    public var rotary: Rotary { Rotary(width: .fraction(1), base: base, layout: .interleaved) }
}
