import Foundation

/// A position vector added to the token embeddings once, before the first layer (`inputAdditive`).
public enum InputPositionEncoding: Sendable, Hashable, Codable {
    /// A learned table `[rows, C]`; token `t` (0-based) reads row `t + offset`.
    /// GPT-2: offset 0. OPT: offset 2 (`OPTLearnedPositionalEmbedding`). fairseq: `padding_idx + 1`.
    case learned(rows: Int, offset: Int)
    /// A fixed sinusoidal table; token `t` uses position index `t + offset` (fairseq: `padding_idx + 1`).
    case sinusoidal(layout: SinusoidalLayout, offset: Int)

    /// A GPT-2-style learned table with `rows` positions.
    public static func learned(rows: Int) -> Self { .learned(rows: rows, offset: 0) }
    /// A sinusoidal table with positions starting at 0.
    public static func sinusoidal(_ layout: SinusoidalLayout) -> Self { .sinusoidal(layout: layout, offset: 0) }

    /// Whether the encoding has a vector for every one of the first `length` tokens.
    /// A learned table is undefined past its last row: it is *unsupported* there, never clamped.
    public func support(at length: Int) -> Support {
        switch self {
        case .learned(let rows, let offset):
            let available = rows - offset
            return length <= available
                ? .supported
                : .unsupported("learned absolute positions have \(available) rows; length \(length) needs more")
        case .sinusoidal:
            return .supported
        }
    }
}

/// The two incompatible sinusoidal layouts (spec §3).
public enum SinusoidalLayout: String, Sendable, Hashable, Codable, CaseIterable {
    /// Vaswani et al.: `PE[p,2k] = sin(p·10000^{−2k/D})`, `PE[p,2k+1] = cos(…)`.
    case vaswani
    /// fairseq / tensor2tensor: `[sin(pω_0…ω_{h−1}), cos(pω_0…ω_{h−1})]`, `ω_k = exp(−k·ln 10000/(h−1))`,
    /// `h = D/2`; odd `D` gets a trailing zero. The ALiBi paper's sinusoidal baseline.
    case fairseq

    /// The position vector at position index `position` for width `width`.
    /// - Returns: `[width]` values.
    public func embedding(position: Int, width: Int) -> [Double] {
        let p = Double(position)
        let half = width / 2
        switch self {
        case .vaswani:
            var vector = [Double](repeating: 0, count: width)
            for k in 0..<half {
                let angle = p * pow(10000, -2 * Double(k) / Double(width))
                vector[2 * k] = sin(angle)
                vector[2 * k + 1] = cos(angle)
            }
            return vector
        case .fairseq:
            let step = half > 1 ? log(10000) / Double(half - 1) : 0
            let angles = (0..<half).map { p * exp(-Double($0) * step) }
            return angles.map(sin) + angles.map(cos) + (width % 2 == 1 ? [0] : [])
        }
    }
}

/// Whether a method is defined at a length.
public enum Support: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Defined.
    case supported
    /// Undefined, with the reason a report shows.
    case unsupported(String)

    /// Whether the length is supported.
    public var isSupported: Bool { if case .supported = self { true } else { false } }

    public var description: String {
        switch self {
        case .supported: "supported"
        case .unsupported(let reason): "unsupported: \(reason)"
        }
    }
}
