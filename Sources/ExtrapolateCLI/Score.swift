import Architecture
import ArgumentParser
import Engine
import Foundation
import Kernels

/// `extrapolate score`: per-token log-probabilities of one window of tokens under one checkpoint.
public struct Score: ParsableCommand {
    public static let configuration = CommandConfiguration(
        abstract: "Score tokens with a checkpoint: each token's log-probability, the mean NLL and the perplexity.",
        discussion: """
            CHECKPOINT is a Hugging Face folder (config.json + model.safetensors, or a sharded
            model.safetensors.index.json), a .safetensors file whose metadata carries an Extrapolate architecture,
            or the index file itself. TOKENS is a raw little-endian token file (nanoGPT's train.bin/val.bin are
            uint16; pass --dtype uint32 for larger vocabularies).

            The model reads the first --length tokens (after --offset) in one causal pass at positions 0…N−1.
            Every token but the first is scored; perplexity is exp(mean NLL) over those N−1 tokens.
            Memory grows linearly with N: attention is tiled and the vocabulary projection is chunked.
            """
    )

    @Option(help: "A checkpoint folder, .safetensors file or model.safetensors.index.json.")
    var checkpoint: String

    @Option(help: "A raw token file (little-endian).")
    var tokens: String

    @Option(help: "Tokens to read (default: the model's trained length).")
    var length: Int?

    @Option(help: "Tokens to skip at the start of the file.")
    var offset: Int = 0

    @Option(help: "Token width of the file: uint16 or uint32.")
    var dtype: String = "uint16"

    @Flag(help: "Print JSON for scripts instead of text.")
    var json = false

    @Flag(help: "Print only the summary, not every token.")
    var summary = false

    @OptionGroup var engine: EngineOptions

    public init() {}

    public func validate() throws {
        if let length, length < 2 { throw ValidationError("--length must be at least 2 (the first token is not scored)") }
        if offset < 0 { throw ValidationError("--offset must not be negative") }
        if TokenFile.DType(rawValue: dtype) == nil { throw ValidationError("--dtype must be uint16 or uint32") }
    }

    public func run() throws {
        engine.apply()
        let started = Date()
        let model = try LanguageModel.load(checkpoint)
        let loaded = Date()
        let length = self.length ?? model.architecture.trainedLength
        if case .unsupported(let reason) = model.support(at: length) {
            throw EngineError.unsupportedLength(length: length, reason: reason)
        }
        let window = try TokenFile.read(path: tokens, dtype: TokenFile.DType(rawValue: dtype) ?? .uint16, offset: offset, count: length)
        let values = try model.logProbabilities(window)
        let finished = Date()
        let result = ScoreResult(
            checkpoint: checkpoint, architecture: model.architecture.name, architectureHash: model.architecture.contentHash,
            trainedLength: model.architecture.trainedLength, length: length, offset: offset, tokens: window, logprobs: values,
            loadSeconds: loaded.timeIntervalSince(started), scoreSeconds: finished.timeIntervalSince(loaded))
        print(json ? try result.json(includeTokens: !summary) : result.text(includeTokens: !summary))
    }
}

/// What `score` prints.
struct ScoreResult {
    var checkpoint: String
    var architecture: String
    var architectureHash: String
    var trainedLength: Int
    var length: Int
    var offset: Int
    var tokens: [Int32]
    var logprobs: [Double]
    var loadSeconds: Double
    var scoreSeconds: Double
    /// Threads the pass ran on, and OpenBLAS's kernel set (`SkylakeX`, `Haswell`, …).
    var threads = Kernels.threads
    var blasCore = Kernels.blasCore

    /// Mean negative log-likelihood in nats, summed in Float64.
    var meanNLL: Double { -logprobs.reduce(0, +) / Double(max(logprobs.count, 1)) }
    var perplexity: Double { exp(meanNLL) }
    var tokensPerSecond: Double { Double(length) / max(scoreSeconds, 1e-9) }

    func text(includeTokens: Bool) -> String {
        var lines: [String] = []
        if includeTokens {
            lines.append("position  token  log-prob")
            lines.append(String(format: "%8d  %5d  %@", 0, Int(tokens[0]), "-"))
            for (index, value) in logprobs.enumerated() {
                lines.append(String(format: "%8d  %5d  %.6f", index + 1, Int(tokens[index + 1]), value))
            }
            lines.append("")
        }
        lines.append("checkpoint      \(checkpoint)")
        lines.append("architecture    \(architecture) (trained at \(trainedLength) tokens)")
        lines.append("window          \(length) tokens from offset \(offset) (\(String(format: "%.2f", Double(length) / Double(trainedLength)))× trained length)")
        lines.append("scored tokens   \(logprobs.count)")
        lines.append(String(format: "mean NLL        %.6f nats", meanNLL))
        lines.append(String(format: "perplexity      %.4f", perplexity))
        lines.append(String(format: "time            %.2f s load, %.2f s forward (%.0f tokens/s)", loadSeconds, scoreSeconds, tokensPerSecond))
        lines.append("threads         \(threads) (OpenBLAS \(blasCore) kernels)")
        return lines.joined(separator: "\n")
    }

    func json(includeTokens: Bool) throws -> String {
        var object: [String: Any] = [
            "checkpoint": checkpoint, "architecture": architecture, "architectureHash": architectureHash,
            "trainedLength": trainedLength, "length": length, "offset": offset, "scoredTokens": logprobs.count,
            "meanNLL": meanNLL, "perplexity": perplexity, "loadSeconds": loadSeconds, "scoreSeconds": scoreSeconds,
            "tokensPerSecond": tokensPerSecond, "threads": threads, "blasCore": blasCore,
        ]
        if includeTokens {
            object["tokens"] = tokens.map(Int.init)
            object["logprobs"] = [NSNull()] + logprobs.map { $0 as Any }
        }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
        return String(decoding: data, as: UTF8.self)
    }
}
