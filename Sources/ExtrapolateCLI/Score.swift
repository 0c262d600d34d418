import ArgumentParser
import Evaluation
import Foundation
import Reports
import TokenData

extension Extrapolate {
    /// `extrapolate score`: per-token log-probabilities of one window of tokens under one checkpoint.
    public struct Score: ParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Score tokens with a checkpoint: each token's log-probability, the mean NLL and the perplexity.",
            discussion: """
                CHECKPOINT is a Hugging Face folder (config.json + model.safetensors, or a sharded \
                model.safetensors.index.json), a .safetensors file whose metadata carries an Extrapolate architecture, \
                or the index file itself. TOKENS is a .tokens.zst dataset or a raw little-endian token file \
                (nanoGPT's train.bin/val.bin are uint16; pass --dtype uint32 for larger vocabularies).

                The model reads --length tokens after --offset in one causal pass at positions 0…N−1 (default: the \
                trained length, or the whole file when it is shorter — the output says which). Every token but the \
                first is scored; perplexity is exp(mean NLL) over those N−1 tokens. Memory grows linearly with N.
                """
        )

        @Option(help: "A checkpoint folder, .safetensors or PyTorch (.pt, .bin) file, or an index.") var checkpoint:
            String
        @Option(
            help: "An architecture JSON or config.json to bind the weights with (a PyTorch file that carries none).")
        var architecture: String?
        @Option(help: "A .tokens.zst dataset or a raw little-endian token file.") var tokens: String
        @Option(parsing: .unconditional, help: "Tokens to read (default: the trained length, at most the file).")
        var length: Int?
        @Option(parsing: .unconditional, help: "Tokens to skip at the start of the file.") var offset: Int = 0
        @Option(help: "Width of a raw token file (a .tokens.zst file says its own).") var dtype: TokenDType = .uint16
        @Flag(help: "Print only the summary, not every token.") var summary = false
        @Flag(
            help: "Score even when config.json sets keys that change the model but are not read (Docs/config-keys.md).")
        var allowUnknownConfigKeys = false
        @OptionGroup var output: OutputOptions
        @OptionGroup var engine: EngineOptions

        public init() {}

        public func validate() throws {
            if let length, length < 2 {
                throw ValidationError("--length must be at least 2 (the first token is not scored)")
            }
            if offset < 0 { throw ValidationError("--offset must not be negative") }
        }

        public func run() throws {
            try engine.apply()
            let result = try ScoreResult.run(
                checkpoint: checkpoint, architectureFile: architecture, data: DataReference(path: tokens, dtype: dtype),
                offset: offset, length: length, keepTokens: !summary, allowUnknownConfigKeys: allowUnknownConfigKeys
            ) { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
            let report = ScoreReport(result)
            try output.emit(json: report.json, text: report.text)
        }
    }
}
