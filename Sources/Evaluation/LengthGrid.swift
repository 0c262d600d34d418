import Foundation

/// The window lengths of a sweep: multiples of a checkpoint's trained length (`1x,2x,4x`), explicit token counts
/// (`512,1024`), both mixed, or the paper's `L+k` grid. Multiples resolve per checkpoint, so checkpoints trained at
/// different lengths each get their own 1×, 2×, ….
public struct LengthGrid: Sendable, Hashable, Codable, CustomStringConvertible {
    /// One entry of the grid.
    public enum Entry: Sendable, Hashable {
        /// A multiple of the trained length.
        case multiple(Double)
        /// A length in tokens.
        case tokens(Int)
    }

    /// The entries, or empty for the paper's grid.
    public let entries: [Entry]
    /// The paper's grid: L + 0, 1, 10, 20 … 100, 200 … 1000, 2000 … 15000.
    public let isPaperGrid: Bool

    /// `1x,2x,4x,8x,16x`.
    public static let standard = LengthGrid(entries: [1, 2, 4, 8, 16].map { .multiple($0) })

    /// A grid of `entries`.
    public init(entries: [Entry]) {
        self.entries = entries
        isPaperGrid = false
    }

    /// Parses `1x,2x,4x`, `512,1024`, a mix, or `L+k`.
    /// - Throws: `EvaluationError.invalidOptions` naming the entry and what would be accepted.
    public init(parsing text: String) throws(EvaluationError) {
        if text.trimmingCharacters(in: .whitespaces) == "L+k" {
            entries = []
            isPaperGrid = true
            return
        }
        var entries: [Entry] = []
        for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            if part.hasSuffix("x"), let multiple = Double(part.dropLast()), multiple > 0, multiple.isFinite {
                entries.append(.multiple(multiple))
            } else if let length = Int(part) {
                guard length >= 2 else {
                    throw .invalidOptions(
                        "length \(length) is too short: a window needs at least 2 tokens"
                            + (length == 1 ? " (for the trained length, write 1x)" : ""))
                }
                entries.append(.tokens(length))
            } else {
                throw .invalidOptions(
                    "cannot read length '\(part)'; use multiples like 2x, lengths in tokens like 1024, or L+k")
            }
        }
        guard !entries.isEmpty else { throw .invalidOptions("no lengths given; use e.g. 1x,2x,4x") }
        self.entries = entries
        isPaperGrid = false
    }

    /// The lengths for a checkpoint trained at `trainedLength`, in the order given (at least 2 tokens each).
    public func resolve(trainedLength: Int) -> [Int] {
        if isPaperGrid {
            let ks =
                [0, 1] + Array(stride(from: 10, through: 100, by: 10))
                + Array(stride(from: 200, through: 1000, by: 100))
                + Array(stride(from: 2000, through: 15000, by: 1000))
            return ks.map { trainedLength + $0 }
        }
        return entries.map { entry in
            switch entry {
            case .multiple(let m): max(Int((m * Double(trainedLength)).rounded()), 2)
            case .tokens(let n): n
            }
        }
    }

    /// Whether any entry depends on the trained length.
    public var isRelative: Bool { isPaperGrid || entries.contains { if case .multiple = $0 { true } else { false } } }

    /// Parses `text` and resolves it at `trainedLength`.
    public static func parse(_ text: String, trainedLength: Int) throws(EvaluationError) -> [Int] {
        try LengthGrid(parsing: text).resolve(trainedLength: trainedLength)
    }

    public var description: String {
        if isPaperGrid { return "L+k" }
        return entries.map { entry in
            switch entry {
            case .multiple(let m): m == m.rounded() ? "\(Int(m))x" : "\(m)x"
            case .tokens(let n): "\(n)"
            }
        }.joined(separator: ",")
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { self = try LengthGrid(parsing: text) } catch {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
