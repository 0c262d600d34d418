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
        hash = Self.hash(of: data)
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw .malformed(path: path, key: "", reason: "not a JSON object")
        }
        let reader = Components(path: path)
        model = try reader.model(root["model"])
        normalizer = try reader.normalizer(root["normalizer"])
        if let growth = normalizer?.growth, growth > Self.maximumNormalizerGrowth {
            // Found by fuzzing: Replace(" ", a 700-byte text with spaces in it), twice, turned 50 bytes into 80 MB.
            throw .malformed(
                path: path, key: "normalizer",
                reason:
                    "its steps can multiply a text's length by up to \(growth < 1e15 ? "\(Int(growth))" : "\(growth)") "
                    + "(real tokenizers reach about 200: NFKC, a prefix, spaces to ▁); at most "
                    + "\(Int(Self.maximumNormalizerGrowth)) is read, so that encoding a text cannot exhaust memory")
        }
        preTokenizer = try reader.preTokenizer(root["pre_tokenizer"])
        added = try reader.addedTokens(root["added_tokens"])
        postProcessor = try reader.postProcessor(root["post_processor"], vocabulary: model.vocabulary, added: added)
        let largest = max(model.vocabulary.values.max() ?? -1, added.tokens.map(\.id).max() ?? -1)
        vocabularySize = Int(largest) + 1
    }

    /// The most a tokenizer's normalizer may multiply a text's length by (`Normalizer.growth`).
    public static let maximumNormalizerGrowth: Double = 4096

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
        // tokenizer_config.json is optional: without a readable one the end-of-document token is looked up by name.
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

extension Tokenizer {
    /// Whether a text may be cut after a line feed that precedes a letter and its parts encoded separately with the
    /// same result: true for the byte-level pipelines (both split patterns end a token at such a line feed and start
    /// a new one at the letter), when nothing is prepended to each part.
    var cutsAtLineStarts: Bool {
        func safe(_ pre: PreTokenizer) -> Bool {
            switch pre {
            case .byteLevel(let addPrefixSpace, _): return !addPrefixSpace
            case .split(.pattern, _, let invert): return !invert
            case .digits: return true
            case .sequence(let steps): return steps.allSatisfy(safe)
            case .split, .metaspace: return false
            }
        }
        func safe(_ normalizer: Normalizer) -> Bool {
            switch normalizer {
            case .nfc, .nfd, .nfkc, .nfkd, .lowercase: return true
            case .sequence(let steps): return steps.allSatisfy(safe)
            case .prepend, .replace, .strip: return false
            }
        }
        guard let preTokenizer, safe(preTokenizer), normalizer.map(safe) ?? true else { return false }
        // Byte-level means every piece goes through ByteLevel (else the split pattern alone decides).
        return true
    }

    /// `encode(text)` computed on `threads` threads: the text is cut after line feeds that precede letters when the
    /// pipeline allows it (`cutsAtLineStarts`), else encoded whole. The ids are the same either way.
    public func encode(_ text: String, addSpecialTokens: Bool = true, threads: Int) -> [Int32] {
        let scalars = Array(text.unicodeScalars)
        guard threads > 1, cutsAtLineStarts, scalars.count > 1 << 16 else {
            return encode(text, addSpecialTokens: addSpecialTokens)
        }
        let parts = max(threads * 4, scalars.count >> 16)
        var cuts = [0]
        for k in 1..<parts {
            var i = max(scalars.count * k / parts, cuts[cuts.count - 1] + 1)
            while i < scalars.count, !(scalars[i - 1] == "\n" && isLetter(scalars[i])) { i += 1 }
            if i < scalars.count { cuts.append(i) }
        }
        cuts.append(scalars.count)
        let chunks = (0..<(cuts.count - 1)).map { String(String.UnicodeScalarView(scalars[cuts[$0]..<cuts[$0 + 1]])) }
        let encoded = Self.parallelMap(chunks, threads: threads) { encode($0, addSpecialTokens: false) }
        let ids = encoded.flatMap { $0 }
        return addSpecialTokens ? postProcessor?.apply(ids) ?? ids : ids
    }

    /// Encodes each of `texts` (documents), spread over `threads` threads, in order.
    public func encode(documents texts: [String], addSpecialTokens: Bool = true, threads: Int) -> [[Int32]] {
        Self.parallelMap(texts, threads: threads) { encode($0, addSpecialTokens: addSpecialTokens) }
    }

    static func parallelMap<T: Sendable>(_ items: [String], threads: Int, _ body: @Sendable (String) -> T) -> [T] {
        let work = ParallelWork<T>(count: items.count)
        DispatchQueue.concurrentPerform(iterations: max(1, min(threads, items.count))) { _ in
            while let index = work.take() { work.store(body(items[index]), at: index) }
        }
        return work.results()
    }

    /// `xxh64:` of a file's bytes, as `hash` is computed: to compare a checkpoint's `tokenizer.json` with a dataset's.
    public static func fileHash(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map(hash(of:))
    }

    static func hash(of data: Data) -> String {
        String(format: "xxh64:%016llx", data.withUnsafeBytes { XXH64.hash($0) })
    }
}

/// Work shared by threads: the next index to take, and the results by index.
private final class ParallelWork<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    private var values: [T?]

    init(count: Int) { values = Array(repeating: nil, count: count) }

    func take() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard next < values.count else { return nil }
        next += 1
        return next - 1
    }

    func store(_ value: T, at index: Int) {
        lock.lock()
        values[index] = value
        lock.unlock()
    }

    func results() -> [T] { values.compactMap { $0 } }  // every index is stored before concurrentPerform returns
}
