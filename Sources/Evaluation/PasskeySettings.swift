import Architecture
import Engine
import Foundation
import TokenData

/// What a job, a sweep or a daemon's run measures.
public enum EvaluationTask: String, Sendable, Hashable, Codable, CaseIterable {
    /// Perplexity at every length on the evaluation data.
    case perplexity
    /// Passkey retrieval at every length and depth (`Passkey`).
    case passkey

    /// A comma-separated list such as "perplexity,passkey", in the order given, each once.
    /// - Throws: `EvaluationError.invalidOptions` naming the unknown entry.
    public static func parseList(_ text: String) throws(EvaluationError) -> [EvaluationTask] {
        var tasks: [EvaluationTask] = []
        for part in text.split(separator: ",") {
            let name = part.trimmingCharacters(in: .whitespaces)
            guard let task = EvaluationTask(rawValue: name) else {
                throw .invalidOptions("takes perplexity and passkey, found '\(name)'")
            }
            if !tasks.contains(task) { tasks.append(task) }
        }
        guard !tasks.isEmpty else { throw .invalidOptions("takes at least one of perplexity, passkey") }
        return tasks
    }
}

/// What passkey retrieval takes beside the lengths and rotary extensions: depths, trials, the keys' seed and how the
/// prompt becomes tokens. Part of `EvaluationSettings` for a passkey job (`EvaluationSettings.passkey`).
public struct PasskeySettings: Sendable, Hashable, Codable {
    /// Per cent of the filler before the key line.
    public var depths: [Double]
    /// Prompts per length and depth.
    public var trials: Int
    /// The seed of the keys (`Passkey.key`).
    public var seed: UInt64
    /// A `tokenizer.json`, or a folder holding one; `nil`: the one beside each checkpoint.
    public var tokenizer: String?
    /// Tokenize as UTF-8 bytes (byte-level models such as the demo probes).
    public var bytes: Bool

    public static let defaultDepths: [Double] = [0, 25, 50, 75, 100]
    public static let defaultTrials = 10

    public init(
        depths: [Double] = PasskeySettings.defaultDepths, trials: Int = PasskeySettings.defaultTrials,
        seed: UInt64 = 0, tokenizer: String? = nil, bytes: Bool = false
    ) {
        self.depths = depths
        self.trials = trials
        self.seed = seed
        self.tokenizer = tokenizer
        self.bytes = bytes
    }

    /// - Throws: `EvaluationError.invalidOptions` naming the option.
    public func validate() throws(EvaluationError) {
        if trials < 1 { throw .invalidOptions("passkey trials must be at least 1") }
        if depths.isEmpty { throw .invalidOptions("passkey depths: give at least one depth") }
        if let bad = depths.first(where: { !(0...100).contains($0) }) {
            throw .invalidOptions("passkey depths are per cents from 0 to 100, found \(bad)")
        }
        if bytes && tokenizer != nil { throw .invalidOptions("passkey: bytes and a tokenizer exclude each other") }
    }

    /// What decides a cell's numbers besides the checkpoint, architecture, series, length and engine: the template,
    /// the seed, the number of trials, the depth and the tokenization (`Passkey.Encoding.identity`). It keys stored
    /// passkey results, so two runs asking for the same cell share it.
    /// A precision other than float32 is part of it (`nil` keeps the hashes of results stored before precision).
    public func scoringHash(depth: Double, encoding: String, precision: Precision? = nil) -> String {
        struct Scoring: Encodable {
            var task = "passkey"
            var template: [String]
            var seed: UInt64, trials: Int, depth: Double, encoding: String
            var precision: Precision?
        }
        return EvaluationSettings.hash(
            of: Scoring(
                template: [Passkey.instruction, Passkey.filler, Passkey.keyLine(0), Passkey.question], seed: seed,
                trials: trials, depth: depth, encoding: encoding, precision: precision == .bf16 ? .bf16 : nil))
    }

    /// How prompts for `model` become tokens: bytes, `tokenizer`, else the `tokenizer.json` beside the checkpoint.
    /// - Throws: `EvaluationError.invalidOptions` naming the file and what to give instead; the tokenizer's own
    ///   error when it cannot be read.
    public func encoding(for model: LanguageModel, checkpoint: String) throws -> Passkey.Encoding {
        if bytes {
            guard model.vocabulary >= 256 else {
                throw EvaluationError.invalidOptions(
                    "\(checkpoint): passkey with bytes needs a vocabulary of at least 256 tokens; the model has "
                        + "\(model.vocabulary)")
            }
            return .bytes
        }
        let folder = ((model.location.config ?? model.location.weightsPath) as NSString).deletingLastPathComponent
        let beside = ((folder.isEmpty ? "." : folder) as NSString).appendingPathComponent("tokenizer.json")
        guard tokenizer != nil || FileManager.default.fileExists(atPath: beside) else {
            throw EvaluationError.invalidOptions(
                "\(checkpoint): no tokenizer.json beside the checkpoint (\(beside)) to build passkey prompts with; "
                    + "give a tokenizer (--tokenizer FILE, `passkey-tokenizer = \"FILE\"`), or bytes for a "
                    + "byte-level model (--bytes, `passkey-bytes = true`)")
        }
        let path = tokenizer ?? beside
        let loaded = try Tokenizer(path: path)
        guard loaded.vocabularySize <= model.vocabulary else {
            throw EvaluationError.invalidOptions(
                "\(path): the tokenizer has \(loaded.vocabularySize) tokens but the model's vocabulary has "
                    + "\(model.vocabulary); is it the checkpoint's tokenizer?")
        }
        return .tokenizer(loaded)
    }
}

extension Passkey.Encoding {
    /// What identifies the tokenization in a result's key: "bytes", or the tokenizer file's content hash.
    public var identity: String {
        switch self {
        case .bytes: "bytes"
        case .tokenizer(let tokenizer): tokenizer.hash
        }
    }
}
