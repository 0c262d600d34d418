import ArgumentParser
import Evaluation
import TokenData

/// The evaluation data and how windows are cut: `sweep`, `compare`, `watch` and `serve` (one declaration, one set of
/// defaults: `EvaluationSettings.Defaults`). Every option is optional, so a `--config` file's values stand unless a
/// flag is given.
struct EvaluationOptions: ParsableArguments {
    typealias Defaults = EvaluationSettings.Defaults
    @Option(help: "A .tokens.zst dataset, or a raw little-endian token file (then --dtype says its width).")
    var data: String?
    @Option(help: "Width of a raw token file (default \(Defaults.dtype.rawValue)).") var dtype: TokenDType?
    @Option(
        help: ArgumentHelp(
            "nonoverlapping (the paper's, default), sliding:S (each window advances S tokens, 1 ≤ S ≤ the length), "
                + "or last-half (llama.cpp)."))
    var `protocol`: EvaluationProtocol?
    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Targets scored at every length (default: enough for 20 windows of the longest length, at most the "
                + "data; the daemon's longest is at least 16 × the trained length).",
            discussion:
                "Fewer than 20 windows make a bootstrap interval unreliable: results and the page flag such intervals. "
                + "Scoring time grows with the budget; the command says how many tokens it will score before it starts."
        ))
    var budget: Int?
    @Option(parsing: .unconditional, help: "First token of the span to score (default \(Defaults.offset)).")
    var offset: Int?
    @Option(help: "BOS in front of windows: none (default), first or every (needs --bos-token).")
    var bos: BOSPlacement?
    @Option(help: "The BOS token id.") var bosToken: Int?
    @Flag(help: "Cut windows inside each document instead of across the stream (.tokens.zst files mark documents).")
    var perDocument = false
    @Option(
        parsing: .unconditional,
        help: "Bootstrap resamples for the 95% intervals (default \(Defaults.resamples); 0: none).")
    var bootstrap: Int?
    @Option(help: "Seed of the bootstrap (default \(Defaults.seed)).") var seed: UInt64?
    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "The length the checkpoints were trained at: 4x means 4 × this (default: what the checkpoint records).",
            discussion:
                "Read in order from a trainer's record in the checkpoint (safetensors metadata extrapolate.trainedLength, "
                + "nanoGPT's block_size, fairseq's tokens_per_sample), else config.json (max_position_embeddings and "
                + "the like, which may exceed what a run trained at), else the family's default; results say which."))
    var trainedLength: Int?
    @Flag(
        help: ArgumentHelp(
            "Evaluate even when config.json sets keys that change the model but are not read (each result warns).",
            discussion:
                "Without it such a config is refused, naming the key (attn_logit_softcapping on a llama config, "
                + "sliding_window, …); keys each family reads: Docs/config-keys.md."))
    var allowUnknownConfigKeys = false

    func validate() throws {
        do { try overrides(data: data ?? "-").settings().validate() } catch { throw ValidationError(error.description) }
    }

    /// The options as overrides of a configuration file's (or the defaults').
    func overrides(data: String? = nil) -> EvaluationOverrides {
        var overrides = EvaluationOverrides()
        overrides.data = data ?? self.data
        overrides.dtype = dtype
        overrides.evaluationProtocol = `protocol`
        overrides.budget = budget
        overrides.offset = offset
        overrides.bos = bos
        overrides.bosToken = bosToken.map { Int32(clamping: $0) }
        overrides.perDocument = perDocument ? true : nil
        overrides.resamples = bootstrap
        overrides.seed = seed
        overrides.trainedLength = trainedLength
        overrides.allowUnknownConfigKeys = allowUnknownConfigKeys ? true : nil
        return overrides
    }

    /// The settings `sweep` and `compare` evaluate with.
    /// - Throws: `ValidationError` without `--data` or for an invalid combination.
    func settings(lengths: LengthGrid?, extensions: [RotaryExtension]) throws -> EvaluationSettings {
        var overrides = overrides()
        overrides.lengths = lengths
        overrides.extensions = extensions
        do { return try overrides.settings() } catch { throw ValidationError(error.description) }
    }
}

/// The lengths and rotary extensions of `sweep`, `watch` and `serve`.
struct LengthOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Lengths: multiples of the trained length (1x,2x), tokens (512,1024), a mix, or L+k (the paper's grid); "
                + "default \(EvaluationSettings.Defaults.lengths)."),
        transform: { text in try LengthGrid(parsing: text) })
    var lengths: LengthGrid?
    @Option(
        name: .customLong("extensions"), parsing: .upToNextOption,
        help: ArgumentHelp(
            "Rotary models: also evaluate these inference-time extensions, factor = length / trained "
                + "(linear ntk dynamic yarn llama3; separated by spaces or commas).",
            valueName: "extensions"),
        transform: { text in
            try text.split(separator: ",").map { part in
                let name = part.trimmingCharacters(in: .whitespaces)
                guard let fix = RotaryExtension(rawValue: name) else {
                    throw ValidationError(
                        "--extensions takes \(RotaryExtension.allCases.map(\.rawValue).joined(separator: ", ")), "
                            + "found '\(name)'")
                }
                return fix
            }
        })
    var extensionLists: [[RotaryExtension]] = []
    @Flag(help: "Shorthand for every rotary extension.") var allExtensions = false

    /// The extensions given, in order (`--extensions yarn linear` or `--extensions yarn,linear`).
    var extensions: [RotaryExtension] { extensionLists.flatMap { $0 } }

    /// The extensions asked for (`nil`: none given).
    var chosenExtensions: [RotaryExtension]? {
        allExtensions ? RotaryExtension.allCases : extensions.isEmpty ? nil : extensions
    }
}
