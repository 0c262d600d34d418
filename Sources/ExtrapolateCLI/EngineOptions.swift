import ArgumentParser
import Foundation
import Kernels

/// Options of the commands that run models (`score`, `sweep`, `compare`).
struct EngineOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Threads to compute with (default: every core this process may use).",
        discussion: "Matrix products are split by rows between these threads, each running OpenBLAS single-threaded; "
            + "results do not depend on the count beyond float rounding (≤ 1e-5)."))
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    /// Applies the options to the engine; call before loading or scoring.
    func apply() {
        if let threads { Kernels.threads = threads }
    }
}
