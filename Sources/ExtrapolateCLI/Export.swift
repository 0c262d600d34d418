import ArgumentParser
import Checkpoints
import Foundation
import Reports
import ResultStore

extension Extrapolate {
    /// `extrapolate export`: a store's results in other tools' formats.
    public struct Export: AsyncParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Export a store's results for other tools (TensorBoard).",
            subcommands: [TensorBoard.self]
        )

        public init() {}

        /// `extrapolate export tensorboard`.
        public struct TensorBoard: AsyncParsableCommand {
            public static let configuration = CommandConfiguration(
                commandName: "tensorboard",
                abstract: "Write each run's extrapolation as TensorBoard scalars by training step.",
                discussion: """
                    One folder per run under --out, each with one event file: extrapolation/ppl_<k>x (perplexity at \
                    k × the trained length) and extrapolation/ratio_<k>x (ppl(kL)/ppl(L)) at every checkpoint's step; \
                    a rotary extension's series under extrapolation/<name>/. Point --out at the folder TensorBoard \
                    already reads (next to your training runs, e.g. --out runs/tb) and the curves sit beside the \
                    training loss. Exporting again replaces this tool's earlier files. Checkpoints whose names carry \
                    no step are left out.
                    """
            )

            @OptionGroup var store: StoreOption
            @Option(help: "The TensorBoard log folder to write into.") var out: String
            @Option(name: .customLong("run"), help: "Only this run.") var runName: String?

            public init() {}

            public func run() async throws {
                let rows = try await store.open().results(run: runName).map(StoredResultsReport.Row.init)
                let summary: TensorBoardExport.Summary
                do { summary = try TensorBoardExport.write(rows, to: out) } catch {
                    throw CommandError("cannot write \(out): \(FileProblem.describe(error, path: out, folder: true))")
                }
                for (run, file) in summary.files.sorted(by: { $0.key < $1.key }) { print("\(run): \(file)") }
                var line = "\(summary.scalars) scalars in \(summary.files.count) runs"
                if !summary.withoutStep.isEmpty {
                    line += "; left out (no step in the name): \(summary.withoutStep.joined(separator: ", "))"
                }
                FileHandle.standardError.write(Data((line + "\n").utf8))
            }
        }
    }
}
