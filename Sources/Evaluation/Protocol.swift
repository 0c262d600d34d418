// How a token stream is cut into model windows and which predictions count (`Docs/evaluation.md`).
//
// Accounting follows the paper's fairseq code: a window of L input tokens [b, b+L) predicts the L tokens
// [b+1, b+L]. With no BOS, every token of the span but the first is scored exactly once (nonoverlapping,
// sliding); last-half scores only predictions made from the second half of each window.

/// An evaluation protocol.
public enum EvaluationProtocol: Sendable, Hashable, CustomStringConvertible {
    /// Windows start at 0, L, 2L, …; every target is scored with in-window context only (the paper's default).
    case nonoverlapping
    /// Windows start at 0, S, 2S, …; each scores only the targets no earlier window scored. `S = L` is nonoverlapping.
    case sliding(stride: Int)
    /// Nonoverlapping windows scoring only the predictions made from their second half (llama.cpp `perplexity`).
    case lastHalf

    /// Parses `nonoverlapping`, `sliding:S` and `last-half`.
    public init?(parsing text: String) {
        switch text {
        case "nonoverlapping": self = .nonoverlapping
        case "last-half": self = .lastHalf
        default:
            guard text.hasPrefix("sliding:"), let stride = Int(text.dropFirst("sliding:".count)), stride >= 1 else {
                return nil
            }
            self = .sliding(stride: stride)
        }
    }

    public var description: String {
        switch self {
        case .nonoverlapping: "nonoverlapping"
        case .sliding(let stride): "sliding:\(stride)"
        case .lastHalf: "last-half"
        }
    }

    /// Window positions (0-based, of the predicting input) that every full window after a segment's first scores.
    /// Positions before it are measured by the first window of each segment only: under `sliding:S` the
    /// positions `0 ..< L − S`, under `last-half` none (they are never scored).
    public func steadyPositions(length: Int) -> Range<Int> {
        switch self {
        case .nonoverlapping: 0..<length
        case .sliding(let stride): max(length - stride, 0)..<length
        case .lastHalf: length / 2..<length
        }
    }
}

extension EvaluationProtocol: Codable {
    /// Encoded as its text form (`nonoverlapping`, `sliding:16`, `last-half`), the same string the options take.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let value = EvaluationProtocol(parsing: text) else {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription: "unknown protocol '\(text)'"))
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// Where a BOS token is put in front of a window.
public enum BOSPlacement: String, Sendable, Hashable, Codable {
    /// Never.
    case none
    /// Only in front of the first window of the span (or of each document).
    case first
    /// In front of every window (llama.cpp, YaRN's scripts).
    case every
}

/// How windows are cut and scored.
public struct WindowOptions: Sendable, Hashable, Codable {
    /// Model window length `L` (input tokens, BOS included).
    public var length: Int
    public var protocolKind: EvaluationProtocol
    public var bos: BOSPlacement
    /// The BOS token id (required unless `bos == .none`).
    public var bosToken: Int32?
    /// Cut windows inside each document instead of across the concatenated stream.
    public var perDocument: Bool

    public init(
        length: Int, protocolKind: EvaluationProtocol = .nonoverlapping, bos: BOSPlacement = .none,
        bosToken: Int32? = nil, perDocument: Bool = false
    ) {
        self.length = length
        self.protocolKind = protocolKind
        self.bos = bos
        self.bosToken = bosToken
        self.perDocument = perDocument
    }
}

/// One model call: stream inputs `[inputStart, inputEnd)` (after an optional BOS), and which of its predictions count.
public struct WindowSpec: Sendable, Hashable {
    /// Whether a BOS token precedes the stream inputs.
    public var bos: Bool
    /// Stream indices of the input tokens.
    public var inputs: Range<Int>
    /// Stream indices of the targets scored (each predicted by the input just before it).
    public var scored: ClosedRange<Int>
    /// Document index (per-document windows; 0 otherwise).
    public var document: Int

    /// Model length of the call.
    public var modelLength: Int { inputs.count + (bos ? 1 : 0) }
    /// Position in the window (0-based, BOS counted) of the input that predicts stream target `t`.
    public func position(predicting target: Int) -> Int { target - 1 - inputs.lowerBound + (bos ? 1 : 0) }
}

public enum WindowPlan {
    /// The windows that score a span of `count` stream tokens (documents starting at `documentStarts`).
    public static func windows(count: Int, documentStarts: [Int] = [0], options: WindowOptions) throws(EvaluationError)
        -> [WindowSpec]
    {
        let L = options.length
        guard L >= 2 || (L >= 1 && options.bos != .none) else {
            throw .invalidOptions("window length must be at least 2")
        }
        if options.bos != .none, options.bosToken == nil { throw .invalidOptions("a BOS placement needs --bos-token") }
        if case .sliding(let stride) = options.protocolKind, stride < 1 || stride > L {
            throw .invalidOptions("sliding stride must be in 1…\(L) (the window length); got \(stride)")
        }
        var segments: [Range<Int>] = [0..<count]
        if options.perDocument {
            let starts = documentStarts.filter { $0 < count }
            segments = zip(starts, starts.dropFirst() + [count]).map { $0..<$1 }.filter { !$0.isEmpty }
        }
        var result: [WindowSpec] = []
        for (document, segment) in segments.enumerated() {
            result += windows(in: segment, document: options.perDocument ? document : 0, options: options)
        }
        return result
    }

    /// Windows over one segment. A window starting at stream index `s` with `p` BOS tokens (0 or 1) reads
    /// `[s, e)`, `e = min(s + L − p, last)`, and predicts targets `s + 1 − p … e`.
    private static func windows(in segment: Range<Int>, document: Int, options: WindowOptions) -> [WindowSpec] {
        let L = options.length
        let last = segment.upperBound - 1
        var result: [WindowSpec] = []
        var scoredThrough = segment.lowerBound - 1
        var start = segment.lowerBound
        var first = true
        while start <= last {
            let bos = options.bos == .every || (options.bos == .first && first)
            let p = bos ? 1 : 0
            let end = min(start + L - p, last)
            if !bos && end <= start { break }  // a lone final token has nothing to predict it
            var from = max(start + 1 - p, scoredThrough + 1)
            if options.protocolKind == .lastHalf { from = max(from, start - p + 1 + L / 2) }
            if from <= end {
                result.append(WindowSpec(bos: bos, inputs: start..<end, scored: from...end, document: document))
            }
            scoredThrough = max(scoredThrough, end)
            if end >= last { break }
            first = false
            switch options.protocolKind {
            case .nonoverlapping, .lastHalf: start = options.bos == .every ? end + 1 : end
            case .sliding(let stride): start += stride
            }
        }
        return result
    }
}
