import ArgumentParser
import Foundation
import Engine
import Evaluation
import Reports

extension Extrapolate {
    /// `extrapolate sweep`: perplexity of checkpoints at increasing lengths on the same tokens.
    public struct Sweep: ParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Perplexity of one or more checkpoints at increasing window lengths, on the same tokens.",
            discussion: """
                Every checkpoint and length scores the same span: the first --budget targets after --offset (default: \
                enough for 20 windows of the longest length, so its interval can be trusted). Lengths like 2x are multiples of each checkpoint's own trained length. A window \
                of L input tokens predicts the next L tokens (the paper's fairseq accounting), so each target is scored \
                once; perplexity = exp(token-weighted mean NLL). Where it is exact (every position method but xPos, \
                dynamic NTK and LongRoPE), lengths run longest first and a shorter window that is the prefix of a longer \
                one is taken from that pass instead of run again. Intervals are 95% bootstrap intervals over windows \
                (documents with --per-document), flagged when there are too few. Checkpoints are ordered by run (their \
                folder) and step (from names like step-2000.safetensors or checkpoint-2000/); each is one series. \
                Lengths a method cannot represent (learned positions past their table) are reported as unsupported. \
                See Docs/evaluation.md.
                """
        )

        @Option(
            parsing: .upToNextOption,
            help: "Checkpoint folders, .safetensors or PyTorch files, or indexes (`--checkpoint a b`, or repeated).")
        var checkpoint: [String]
        @Option(
            help: "An architecture JSON or config.json to bind every checkpoint with (PyTorch files that carry none).")
        var architecture: String?
        @OptionGroup var lengths: LengthOptions
        @Flag(
            help: ArgumentHelp(
                "Run every window of every length, instead of taking shorter lengths' windows from longer passes.",
                discussion:
                    "The numbers are the same either way (see Docs/evaluation.md, \"Prefix sharing\"); this only measures the saving."
            ))
        var noPrefixSharing = false
        @OptionGroup var evaluation: EvaluationOptions
        @Option(
            help: ArgumentHelp(
                "What to measure: perplexity, passkey, or both (perplexity,passkey; default perplexity).",
                discussion:
                    "passkey: passkey retrieval at every length and depth of each checkpoint (as `extrapolate passkey`, "
                    + "with --depths, --trials, --tokenizer or --bytes, and --passkey-seed), after perplexity."),
            transform: { text in
                do { return try EvaluationTask.parseList(text) } catch { throw ValidationError("--tasks \(error)") }
            })
        var tasks: [EvaluationTask] = [.perplexity]
        @OptionGroup var passkey: PasskeyOptions
        @Option(help: "Seed of the passkeys (default 0).") var passkeySeed: UInt64 = 0
        @OptionGroup var output: OutputOptions
        @Option(help: "Write a CSV (one row per checkpoint, series and length) here.") var csv: String?
        @Option(help: "Write an SVG plot of perplexity against length here (and NAME-positions.svg: loss by position).")
        var svg: String?
        @OptionGroup var engine: EngineOptions

        public init() {}

        public func validate() throws {
            if checkpoint.isEmpty { throw ValidationError("give at least one --checkpoint") }
        }

        public func run() throws {
            try engine.apply()
            guard tasks.contains(.perplexity) else { return try runPasskeyOnly() }
            var settings = try evaluation.settings(lengths: lengths.lengths, extensions: lengths.chosenExtensions ?? [])
            settings.precision = engine.precision == .bf16 ? .bf16 : nil
            let runner = SweepRunner(settings: settings, sharesPrefixes: !noPrefixSharing)
            let checkpoints = try checkpoint.map { path throws(EvaluationError) in
                try SweepCheckpoint.load(
                    path, architectureFile: architecture, trainedLength: settings.trainedLength,
                    allowUnknownConfigKeys: settings.allowUnknownConfigKeys ?? false)
            }
            let data = try EvaluationData.load(runner.settings, longest: runner.longest(checkpoints))
            FileHandle.standardError.write(Data((runner.plan(checkpoints, data: data) + "\n").utf8))
            let progress = ProgressLine()
            var result = try runner.run(checkpoints, data: data) { progress.update($0.fraction, $0.label) }
            progress.finish()
            if tasks.contains(.passkey) {
                result.passkey = try checkpoints.map { checkpoint in
                    try passkey.run(
                        model: checkpoint.model, checkpoint: checkpoint.summary.checkpoint, lengths: lengths,
                        seed: passkeySeed)
                }
            }
            let report = SweepReport(result)
            if let csv { try write(report.csv(), to: csv) }
            if let svg {
                try write(report.perplexitySVG(), to: svg)
                try write(
                    report.positionsSVG(),
                    to: svg.hasSuffix(".svg") ? String(svg.dropLast(4)) + "-positions.svg" : svg + "-positions.svg")
            }
            try writePasskeyFiles(result.passkey ?? [])
            try output.emit(json: report.json) {
                ([report.table()] + (result.passkey ?? []).map { PasskeyReport($0).text }).joined(separator: "\n\n")
            }
        }

        /// `--tasks passkey` alone: no data is read.
        private func runPasskeyOnly() throws {
            let results = try checkpoint.map { path in
                let model = try LanguageModel.load(
                    path, architectureFile: architecture, trainedLength: evaluation.trainedLength,
                    allowUnknownConfigKeys: evaluation.allowUnknownConfigKeys)
                return try passkey.run(model: model, checkpoint: path, lengths: lengths, seed: passkeySeed)
            }
            try writePasskeyFiles(results)
            try output.emit(json: { try ReportJSON.encode(results) }) {
                results.map { PasskeyReport($0).text }.joined(separator: "\n\n")
            }
        }

        /// With --csv and --svg, each checkpoint's passkey rows and heatmap beside them: NAME-passkey.csv (every
        /// checkpoint's trials) and NAME-passkey-N.svg (checkpoint N, counted from 1).
        private func writePasskeyFiles(_ results: [PasskeyResult]) throws {
            guard !results.isEmpty else { return }
            if let csv {
                let body = results.enumerated().map { PasskeyReport($0.element).csv(header: $0.offset == 0) }
                try write(body.joined(), to: (csv as NSString).deletingPathExtension + "-passkey.csv")
            }
            if let svg {
                for (index, result) in results.enumerated() {
                    try write(
                        PasskeyReport(result).heatmapSVG(),
                        to: (svg as NSString).deletingPathExtension + "-passkey-\(index + 1).svg")
                }
            }
        }
    }
}
