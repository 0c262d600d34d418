import Foundation

/// A Hugging Face `tokenizer.json` with a BPE model, encoding text to exactly the ids the `tokenizers` library
/// gives: added tokens split out first, then the normalizer, the pre-tokenizer, the BPE model and the
/// post-processor, as its `encode` runs them.
///
/// Supported: the byte-level BPE of GPT-2, GPT-NeoX/Pythia, SmolLM, Llama-3 and Qwen2 (`ByteLevel`, `Split` with their
/// patterns, `Digits`, `ignore_merges`), and the SentencePiece-style BPE of Llama-2 and Mistral (`Prepend` +
/// `Replace` normalizers or the `Metaspace` pre-tokenizer, `byte_fallback`, the unknown token). A component outside
/// that list is a `TokenizerError.unsupported` naming it: never a silent mis-tokenization.
///
/// ```swift
/// let tokenizer = try Tokenizer(path: "models/pythia-160m")      // a folder holding tokenizer.json, or the file
/// let ids = tokenizer.encode("In the beginning")                 // with the post-processor's special tokens
/// ```
public struct Tokenizer: Sendable {
    /// The folder the file is in (the model's name, usually), or the file's name.
    public let name: String
    /// `xxh64:` of the file's bytes: datasets record it, and the daemon compares it with a checkpoint's.
    public let hash: String
    /// One more than the largest id (model vocabulary and added tokens).
    public let vocabularySize: Int
    /// The file read.
    public let path: String

    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let model: BPEModel
    let postProcessor: PostProcessor?
    let added: AddedTokens

    /// Reads `path`: a `tokenizer.json`, or a folder holding one.
    /// - Throws: `TokenizerError` naming the file, the key and what is wrong or unsupported.
    public init(path: String) throws(TokenizerError) {
        var isFolder: ObjCBool = false
        var file = path
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
            file = (path as NSString).appendingPathComponent("tokenizer.json")
        }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw .unreadable(
                path: file,
                reason: FileManager.default.fileExists(atPath: file)
                    ? "permission denied" : "no such file (a model folder must hold tokenizer.json)")
        }
        try self.init(data: data, path: file)
    }

    /// Parses the bytes of a `tokenizer.json` (`path` names it in errors).
    public init(data: Data, path: String) throws(TokenizerError) {
        self.path = path
        let folder = (path as NSString).deletingLastPathComponent
        name =
            (path as NSString).lastPathComponent == "tokenizer.json" && !folder.isEmpty
            ? (folder as NSString).lastPathComponent : (path as NSString).lastPathComponent
        hash = String(format: "xxh64:%016llx", data.withUnsafeBytes { XXH64.hash($0) })
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw .malformed(path: path, key: "", reason: "not a JSON object")
        }
        let reader = Components(path: path)
        model = try reader.model(root["model"])
        normalizer = try reader.normalizer(root["normalizer"])
        preTokenizer = try reader.preTokenizer(root["pre_tokenizer"])
        added = try reader.addedTokens(root["added_tokens"])
        postProcessor = try reader.postProcessor(root["post_processor"], vocabulary: model.vocabulary, added: added)
        let largest = max(model.vocabulary.values.max() ?? -1, added.tokens.map(\.id).max() ?? -1)
        vocabularySize = Int(largest) + 1
    }

    /// The id of a token (in the vocabulary or added), if it has one.
    public func id(of token: String) -> Int32? {
        added.tokens.first { $0.content == token }?.id ?? model.vocabulary[token]
    }

    /// The ids of `text`; with `addSpecialTokens`, the post-processor's (a template's BOS, for example) included.
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int32] {
        var cache: [String: [Int32]] = [:]
        var ids: [Int32] = []
        for segment in added.split(text, normalized: false) {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(let raw, let atStart):
                let normalized = normalizer?.apply(raw) ?? raw
                for inner in added.split(normalized, normalized: true) {
                    switch inner {
                    case .token(let id):
                        ids.append(id)
                    case .text(let piece, let innerStart):
                        let pieces =
                            preTokenizer?.apply([Piece(text: piece, atStart: atStart && innerStart)])
                            ?? [Piece(text: piece, atStart: atStart)]
                        for piece in pieces where !piece.text.isEmpty {
                            if let known = cache[piece.text] {
                                ids += known
                            } else {
                                let encoded = model.encode(piece.text)
                                if piece.text.utf8.count < 256 { cache[piece.text] = encoded }
                                ids += encoded
                            }
                        }
                    }
                }
            }
        }
        return addSpecialTokens ? postProcessor?.apply(ids) ?? ids : ids
    }

    /// The token that ends a document, for packing: `tokenizer_config.json`'s `eos_token` beside the file when there
    /// is one, else the first special added token named like an end of text (`<|endoftext|>`, `<|end_of_text|>`,
    /// `</s>`, `<eos>`, `<|im_end|>`).
    public var endOfDocument: (token: String, id: Int32)? {
        let config = ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent(
            "tokenizer_config.json")
        if let data = FileManager.default.contents(atPath: config),
            let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        {
            let eos = object["eos_token"] as? String ?? (object["eos_token"] as? [String: Any])?["content"] as? String
            if let eos, let id = id(of: eos) { return (eos, id) }
        }
        for name in ["<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>", "<|im_end|>"] {
            if let token = added.tokens.first(where: { $0.content == name && $0.special }) { return (name, token.id) }
        }
        return nil
    }
}

/// A tokenizer file that cannot be used.
public enum TokenizerError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file cannot be read.
    case unreadable(path: String, reason: String)
    /// A key is missing or has the wrong form.
    case malformed(path: String, key: String, reason: String)
    /// A component this reader does not implement: using the file anyway would give wrong ids.
    case unsupported(path: String, component: String)

    /// What went wrong and what to do.
    public var description: String {
        switch self {
        case .unreadable(let path, let reason): "\(path): cannot read the tokenizer: \(reason)"
        case .malformed(let path, let key, let reason):
            "\(path): not a tokenizer.json Extrapolate can read: \(key.isEmpty ? "" : "\(key): ")\(reason)"
        case .unsupported(let path, let component):
            "\(path): \(component) is not supported (supported: BPE models with the ByteLevel, Split, Digits and "
                + "Metaspace pre-tokenizers, the NFC/NFD/NFKC/NFKD, Lowercase, Prepend, Replace and Strip "
                + "normalizers, Template/ByteLevel/Roberta/Bert post-processing); tokenize with the `tokenizers` "
                + "library and pack the ids with `dataset pack --from raw`"
        }
    }
}

/// Part of the text on its way through the pipeline: whether it begins at the start of the input matters to
/// `Metaspace`'s `prepend_scheme: first`.
struct Piece: Sendable {
    var text: String
    var atStart: Bool
}
