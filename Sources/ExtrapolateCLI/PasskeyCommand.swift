import ArgumentParser
import Engine
import Evaluation
import Foundation
import Reports
import TokenData

extension Extrapolate {
    /// `extrapolate passkey`: passkey retrieval of one checkpoint at every length and depth.
    public struct Passkey: ParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Passkey retrieval at every length and depth: can the model use a token far back?",
            discussion: """
                The standard test of Landmark Attention, Position Interpolation and YaRN: a five-digit key hidden at \
                a depth (per cent of the filler before it) in repeated filler text, then "What is the pass key? The \
                pass key is". Each prompt is tokenized with the checkpoint's tokenizer.json (or --tokenizer; UTF-8 \
                bytes with --bytes, as the demo probes read), its filler cut so the pass is at most the length. One \
                forward pass scores it, without generation: the key is retrieved when its token has the largest \
                logit at each of its positions (what greedy decoding writes), and its mean log-probability is \
                reported beside. Keys come from --seed, the same for every length and depth. Docs/evaluation.md, \
                "Passkey retrieval"; the template: Docs/spec/passkey.md.
                """
        )

        @Option(help: "A checkpoint folder, .safetensors or PyTorch (.pt, .bin) file, or an index.") var checkpoint:
            String
        @Option(
            help: "An architecture JSON or config.json to bind the weights with (a PyTorch file that carries none).")
        var architecture: String?
        @OptionGroup var lengths: LengthOptions
        @OptionGroup var passkey: PasskeyOptions
        @Option(help: "Seed of the keys (default 0).") var seed: UInt64 = 0
        @Option(help: "The trained length the lengths are multiples of, over what the checkpoint says.")
        var trainedLength: Int?
        @Flag(help: "Print one CSV row per trial instead of the table.") var csv = false
        @Option(
            help: ArgumentHelp(
                "Write the heatmap (accuracy by length and depth) as SVG to this file.",
                discussion: "With --extensions, one file per series: NAME.svg, NAME-yarn.svg, …"))
        var svg: String?
        @Flag(
            help: "Score even when config.json sets keys that change the model but are not read (Docs/config-keys.md).")
        var allowUnknownConfigKeys = false
        @OptionGroup var output: OutputOptions
        @OptionGroup var engine: EngineOptions

        public init() {}

        public func validate() throws {
            if csv && output.json { throw ValidationError("--csv and --json exclude each other") }
        }

        public func run() throws {
            try engine.apply()
            let model = try LanguageModel.load(
                checkpoint, architectureFile: architecture, trainedLength: trainedLength,
                allowUnknownConfigKeys: allowUnknownConfigKeys)
            let result = try passkey.run(model: model, checkpoint: checkpoint, lengths: lengths, seed: seed)
            let report = PasskeyReport(result)
            if let svg {
                let series = result.cells.map(\.series).reduce(into: [String]()) {
                    if !$0.contains($1) { $0.append($1) }
                }
                for name in series {
                    let path =
                        name == "model" ? svg : (svg as NSString).deletingPathExtension + "-\(name).svg"
                    try write(report.heatmapSVG(series: name), to: path)
                }
            }
            if csv {
                print(report.csv(), terminator: "")
                if let path = output.jsonOutput { try write(try report.json(), to: path) }
            } else {
                try output.emit(json: report.json, text: { report.text })
            }
        }
    }
}

/// What passkey retrieval takes beside the lengths (`passkey`, `sweep --tasks …,passkey`): depths, trials and the
/// tokenizer.
struct PasskeyOptions: ParsableArguments {
    @Option(help: "A tokenizer.json, or a folder holding one (default: the one beside each checkpoint).")
    var tokenizer: String?
    @Flag(help: "Tokenize as UTF-8 bytes (byte-level models such as the demo probes).") var bytes = false
    @Option(
        help: "Depths: per cent of the filler before the key, comma-separated (default 0,25,50,75,100).",
        transform: parseDepths)
    var depths: [Double] = PasskeySettings.defaultDepths
    @Option(help: "Prompts per length and depth (default 10).") var trials = 10

    func validate() throws {
        do { try settings(seed: 0).validate() } catch { throw ValidationError("\(error)") }
    }

    /// The options as the settings a passkey job keeps.
    func settings(seed: UInt64) -> PasskeySettings {
        PasskeySettings(
            depths: depths, trials: trials, seed: seed, tokenizer: tokenizer,
            bytes: bytes)
    }

    /// Passkey retrieval of `model` at the lengths and extensions asked for.
    func run(model: LanguageModel, checkpoint: String, lengths: LengthOptions, seed: UInt64) throws -> PasskeyResult {
        let settings = settings(seed: seed)
        return try PasskeyResult.run(
            model: model, checkpoint: checkpoint, encoding: try settings.encoding(for: model, checkpoint: checkpoint),
            lengths: lengths.lengths ?? EvaluationSettings.Defaults.lengths,
            extensions: lengths.chosenExtensions ?? [], depths: depths, trials: trials, seed: seed)
    }
}

/// `--depths`: per cents from 0 to 100, comma-separated.
func parseDepths(_ text: String) throws -> [Double] {
    try text.split(separator: ",").map { part in
        guard let value = Double(part.trimmingCharacters(in: .whitespaces)), (0...100).contains(value) else {
            throw ValidationError("--depths takes per cents from 0 to 100, found '\(part)'")
        }
        return value
    }
}
