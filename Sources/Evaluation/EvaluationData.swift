import Engine
import Foundation
import TokenData

/// The tokens an evaluation scores: one span of the data, `[offset, offset + targets + 1)`, with the document
/// starts inside it. The one way `sweep`, `compare` and the daemon read evaluation data.
public struct EvaluationData: Sendable {
    /// Where it came from, with the content checksum filled in.
    public var reference: DataReference
    /// The span's tokens (targets + 1: the first token is context only).
    public var tokens: [Int32]
    /// Document starts relative to the span (always begins with 0).
    public var documentStarts: [Int]
    /// Whether the file marks documents (`.tokens.zst`); raw files are one stream.
    public var hasDocuments: Bool
    /// Byte-level tokens (bits per byte are reported).
    public var byteLevel: Bool
    /// Tokenizer name and hash, and vocabulary size, when the dataset records them.
    public var tokenizer: String?
    public var tokenizerHash: String?
    public var vocabularySize: Int?

    /// Data already in memory (tests, callers that produce tokens themselves).
    public init(
        reference: DataReference, tokens: [Int32], documentStarts: [Int] = [0], hasDocuments: Bool = false,
        byteLevel: Bool = false, tokenizer: String? = nil, tokenizerHash: String? = nil, vocabularySize: Int? = nil
    ) {
        self.reference = reference
        self.tokens = tokens
        self.documentStarts = documentStarts
        self.hasDocuments = hasDocuments
        self.byteLevel = byteLevel
        self.tokenizer = tokenizer
        self.tokenizerHash = tokenizerHash
        self.vocabularySize = vocabularySize
    }

    /// Targets scored: every token of the span but the first.
    public var targets: Int { tokens.count - 1 }

    /// Reads the span `settings` asks for when the longest window is `longest` tokens.
    /// - Throws: `EvaluationError` when the settings are inconsistent, the file cannot be read, it is too short for
    ///   an explicit `--budget`, or `--per-document` is asked of a file without documents.
    public static func load(_ settings: EvaluationSettings, longest: Int) throws(EvaluationError) -> EvaluationData {
        try settings.validate()
        var reference = settings.data
        let (path, offset) = (reference.path, settings.offset)
        let dataset =
            path.hasSuffix(".tokens.zst")
            ? try reading { () throws(TokenDataError) in try TokenDataset(path: path) } : nil
        if dataset == nil, settings.perDocument {
            throw .invalidOptions(
                "--per-document needs document boundaries, and \(path) is a raw token file without them; pack it "
                    + "with `extrapolate dataset pack` (one document per input file) or drop --per-document")
        }
        let total: Int
        if let dataset {
            total = dataset.count
        } else {
            total = try reading { () throws(TokenDataError) in try TokenFile.count(path: path, dtype: reference.dtype) }
        }
        let available = max(total - offset, 0)
        let wanted = settings.targets(longest: longest) + 1
        if settings.budget != nil, wanted > available { throw .tooFewTokens(available: available, needed: wanted) }
        let count = min(wanted, available)
        guard count >= 2 else { throw .tooFewTokens(available: available, needed: 2) }
        guard let dataset else {
            let tokens = try reading { () throws(TokenDataError) in
                try TokenFile.read(path: path, dtype: reference.dtype, offset: offset, count: count)
            }
            reference.checksum = try reading { () throws(TokenDataError) in try TokenFile.checksum(path: path) }
            return EvaluationData(reference: reference, tokens: tokens)
        }
        let tokens = try reading { () throws(TokenDataError) in try dataset.tokens(in: offset..<(offset + count)) }
        let starts = [0] + dataset.documentStarts.filter { $0 > offset && $0 < offset + count }.map { $0 - offset }
        let m = dataset.metadata
        reference.checksum = m.checksum
        return EvaluationData(
            reference: reference, tokens: tokens, documentStarts: starts, hasDocuments: true,
            byteLevel: m.tokenizer == "bytes", tokenizer: m.tokenizer, tokenizerHash: m.tokenizerHash,
            vocabularySize: m.vocabularySize)
    }

    /// Checks that the data was tokenized for `model`, when both sides say: the dataset's recorded tokenizer hash
    /// must be the hash of the `tokenizer.json` beside the checkpoint, and its vocabulary must fit the model's.
    /// - Throws: `EvaluationError.incompatibleData` naming both sides.
    public func checkCompatible(with model: LanguageModel, checkpoint: String) throws(EvaluationError) {
        if let vocabularySize, vocabularySize > model.vocabulary {
            throw .incompatibleData(
                checkpoint: checkpoint,
                reason: "the data's vocabulary has \(vocabularySize) tokens (tokenizer \(tokenizer ?? "unknown")) but "
                    + "the model's has \(model.vocabulary)")
        }
        let folder = ((model.location.config ?? model.location.weightsPath) as NSString).deletingLastPathComponent
        let file = ((folder.isEmpty ? "." : folder) as NSString).appendingPathComponent("tokenizer.json")
        if let recorded = tokenizerHash, let own = Tokenizer.fileHash(file), own != recorded {
            throw .incompatibleData(
                checkpoint: checkpoint,
                reason: "the data was tokenized with \(tokenizer ?? "another tokenizer") (\(recorded)) but \(file) "
                    + "hashes to \(own)")
        }
    }

    /// Runs a read of the data, its errors as `EvaluationError.data`.
    private static func reading<T>(_ body: () throws(TokenDataError) -> T) throws(EvaluationError) -> T {
        do { return try body() } catch { throw .data(error) }
    }
}
