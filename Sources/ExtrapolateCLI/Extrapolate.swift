import ArgumentParser

/// The `extrapolate` command tree: `serve`, `watch`, `status`, `results`, `report`, `export tensorboard`, `inspect`, `score`, `sweep`, `compare`,
/// `dataset {pack, inspect, verify, benchmark}`.
public struct Extrapolate: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "extrapolate",
        abstract: "Measure how transformer language models extrapolate beyond their training length.",
        discussion: """
            Declare or import an architecture, load checkpoints, and compute perplexity at 1×–16× the \
            trained length under the protocols of Press et al. (ALiBi, ICLR 2022).

            Start with `extrapolate serve Datasets/demo --data Datasets/kjv/valid.tokens.zst` (the daemon on the \
            bundled demo runs; open the address it prints), `extrapolate sweep --checkpoint Datasets/demo/*/step-2000.safetensors \
            --data Datasets/kjv/valid.tokens.zst` or `extrapolate inspect path/to/config.json`.
            """,
        subcommands: [
            Serve.self, Watch.self, Status.self, Results.self, Report.self, Inspect.self, Score.self, Sweep.self,
            Compare.self, Dataset.self,
            Export.self, CPU.self,
        ]
    )

    public init() {}
}
