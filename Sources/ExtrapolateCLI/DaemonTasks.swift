import ArgumentParser
import Evaluation

/// What the daemon measures (`tasks`) and passkey retrieval's settings, over the configuration file's.
struct DaemonTasks: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "What to measure for every checkpoint: perplexity, passkey, or both (default perplexity).",
            discussion:
                "passkey: passkey retrieval at every length and depth (Docs/evaluation.md), queued after every "
                + "perplexity job; with --depths, --trials, --passkey-seed and --tokenizer or --bytes."),
        transform: { text in
            do { return try EvaluationTask.parseList(text) } catch { throw ValidationError("--tasks \(error)") }
        })
    var tasks: [EvaluationTask]?
    @Option(
        help: "Passkey depths: per cent of the filler before the key, comma-separated (default 0,25,50,75,100).",
        transform: parseDepths)
    var depths: [Double]?
    @Option(help: "Passkey prompts per length and depth (default 10).") var trials: Int?
    @Option(help: "Seed of the passkeys (default 0).") var passkeySeed: UInt64?
    @Option(help: "The tokenizer.json passkey prompts are built with (default: the one beside each checkpoint).")
    var tokenizer: String?
    @Flag(help: "Build passkey prompts as UTF-8 bytes (byte-level models such as the demo probes).") var bytes = false

    func validate() throws {
        if let trials, trials < 1 { throw ValidationError("--trials must be at least 1") }
        if bytes && tokenizer != nil { throw ValidationError("--bytes and --tokenizer exclude each other") }
    }
}
