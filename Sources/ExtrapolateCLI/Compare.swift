import ArgumentParser
import Evaluation
import Reports

extension Extrapolate {
    /// `extrapolate compare A B`: paired comparison of two checkpoints on the same windows.
    public struct Compare: ParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Compare two checkpoints on the same tokens and windows, with a paired bootstrap interval.",
            discussion: """
                Both checkpoints score exactly the same windows. The difference is B's mean NLL minus A's (negative: \
                B is better); the 95% interval comes from resampling windows (documents with --per-document) jointly \
                for A and B, which is far tighter than comparing two separate intervals. Fewer than 20 windows give \
                an interval too narrow to trust, and the output says so.
                """
        )

        @Argument(help: "Checkpoint A.") var a: String
        @Argument(help: "Checkpoint B.") var b: String
        @Option(parsing: .unconditional, help: "Window length (default: A's trained length).") var length: Int?
        @Option(
            help: "An architecture JSON or config.json to bind both checkpoints with (PyTorch files that carry none).")
        var architecture: String?
        @OptionGroup var evaluation: EvaluationOptions
        @OptionGroup var output: OutputOptions
        @OptionGroup var engine: EngineOptions

        public init() {}

        public func validate() throws {
            if let length, length < 2 { throw ValidationError("--length must be at least 2") }
        }

        public func run() throws {
            try engine.apply()
            let (trained, allow) = (evaluation.trainedLength, evaluation.allowUnknownConfigKeys)
            let (first, second) = (
                try SweepCheckpoint.load(
                    a, architectureFile: architecture, trainedLength: trained, allowUnknownConfigKeys: allow),
                try SweepCheckpoint.load(
                    b, architectureFile: architecture, trainedLength: trained, allowUnknownConfigKeys: allow)
            )
            let window = length ?? first.summary.trainedLength
            var settings = try evaluation.settings(lengths: LengthGrid(entries: [.tokens(window)]), extensions: [])
            settings.precision = engine.precision == .bf16 ? .bf16 : nil
            let data = try EvaluationData.load(settings, longest: window)
            let report = ComparisonReport(
                try Comparison.run(first, second, length: window, settings: settings, data: data))
            try output.emit(json: report.json, text: report.text)
        }
    }
}
