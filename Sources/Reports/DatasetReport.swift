import Foundation
import TokenData

/// Renders `dataset inspect`: the metadata, size and compression of a `.tokens.zst` file.
public struct DatasetReport: Sendable, Encodable {
    /// The file, and what it records.
    public var file: String
    public var metadata: TokenMetadata
    /// Tokens (the same count as `metadata.tokenCount`, under the name every command uses).
    public var tokens: Int
    public var fileBytes: Int
    public var frames: Int
    /// Raw token bytes over compressed bytes.
    public var compressionRatio: Double
    /// The first 1,000 document starts.
    public var documentStarts: [Int]
    /// Shortest and longest document, in tokens.
    public var shortestDocument: Int?
    public var longestDocument: Int?

    /// The report of `dataset`.
    public init(_ dataset: TokenDataset) {
        let m = dataset.metadata
        file = dataset.path
        metadata = m
        tokens = m.tokenCount
        fileBytes = dataset.fileSize
        frames = dataset.frameCount
        compressionRatio = Double(m.tokenCount * m.dtype.width) / Double(max(dataset.compressedBytes, 1))
        documentStarts = Array(dataset.documentStarts.prefix(1000))
        let lengths = zip(dataset.documentStarts, dataset.documentStarts.dropFirst() + [m.tokenCount]).map { $1 - $0 }
        shortestDocument = lengths.min()
        longestDocument = lengths.max()
    }

    /// The JSON document (`Docs/json.md`, "dataset inspect").
    public func json() throws -> String { try ReportJSON.encode(self) }

    /// Text for people.
    public func text() -> String {
        let m = metadata
        let raw = m.tokenCount * m.dtype.width
        let documents = shortestDocument.map { ", \($0)–\(longestDocument ?? $0) tokens each" } ?? ""
        return """
            file              \(file) (\(fileBytes) bytes)
            tokens            \(m.tokenCount) \(m.dtype.rawValue), vocabulary \(m.vocabularySize)
            tokenizer         \(m.tokenizer ?? "unknown")\(m.tokenizerHash.map { " (\($0))" } ?? "")
            documents         \(m.documentCount)\(documents)
            frames            \(frames) of \(m.tokensPerFrame) tokens
            compression       \(String(format: "%.2f", compressionRatio))× (\(raw) bytes of tokens)
            checksum          \(m.checksum)
            source            \(m.source.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))
            created           \(m.created)
            """
    }
}
