import ArgumentParser
import Engine

/// The `extrapolate` command tree: `serve`, `watch`, `status`, `results`, `report`, `export tensorboard`, `inspect`, `score`, `sweep`, `compare`,
/// `dataset {pack, inspect, verify, benchmark}`.
public struct Extrapolate: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "extrapolate",
        abstract: "Measure how transformer language models extrapolate beyond their training length.",
        discussion: """
            Declare or import an architecture, load checkpoints, and compute perplexity at 1×–16× the \
            trained length under the protocols of Press et al. (ALiBi, ICLR 2022).

            Start with `Scripts/demo` in the repository (it installs what is missing, builds, and serves the \
            bundled demo runs; open the address it prints) or `extrapolate serve Datasets/demo --data \
            Datasets/kjv/valid.tokens.zst`, `extrapolate sweep --checkpoint Datasets/demo/*/step-2000.safetensors \
            --data Datasets/kjv/valid.tokens.zst` or `extrapolate inspect path/to/config.json`.
            """,
        version: "extrapolate \(release) (numerics \(LanguageModel.engineVersion))",
        subcommands: [
            Serve.self, Watch.self, Worker.self, Status.self, Results.self, Report.self, Inspect.self, Score.self,
            Sweep.self, Passkey.self, Train.self, GradientsCommand.self,
            Compare.self, Dataset.self,
            Export.self, CPU.self, Prune.self,
        ]
    )

    /// The release: raised when what the commands accept or print changes. Results are keyed by the numerics'
    /// version (`LanguageModel.engineVersion`), which `--version` also prints.
    public static let release = "0.28.0"

    public init() {}
}
