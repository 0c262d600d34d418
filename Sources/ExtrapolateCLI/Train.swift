import ArgumentParser
import Architecture
import Foundation
import Kernels
import Training

extension DataOrder: ExpressibleByArgument {}

/// Set by SIGINT/SIGTERM during `extrapolate train`: the run saves after the step in progress and stops.
nonisolated(unsafe) private var stopRequested: sig_atomic_t = 0

extension Extrapolate {
    /// `extrapolate train`: train an architecture short on a token dataset, writing checkpoints the daemon evaluates.
    public struct Train: ParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Train an architecture on a .tokens.zst dataset, writing checkpoints the daemon evaluates.",
            discussion: """
                Declare the model with --preset (probe-alibi, probe-rotary, probe-sinusoidal, probe-t5, probe-nope), \
                --architecture (an architecture JSON or a Hugging Face config.json; weights initialised from --seed \
                as GPT-2 and fairseq do) or --checkpoint (start from its weights). Each step draws --batch × \
                --accumulate windows of --length + 1 tokens (default: the trained length) and takes one AdamW step \
                on their mean NLL: linear warm-up, cosine decay to --min-learning-rate, clipping by global norm, \
                weight decay on matrices only. The defaults are the paper's probe settings (Datasets/demo/train.py). \
                Gradients are exact fp32 (Docs/training.md).

                --out gets step-N.safetensors every --save-every steps and after the last (the architecture in its \
                metadata: `extrapolate serve RUNS` evaluates each as it appears; a model from a Hugging Face \
                config.json gets checkpoint-N/ folders that transformers loads too, see --format), train-state.safetensors (what \
                --resume continues from, bit for bit) and train.jsonl (step, loss, learning rate, gradient norm, \
                tokens/s). Ctrl-C or SIGTERM saves a checkpoint after the step in progress and stops; a NaN loss stops \
                and saves the last good weights.
                """
        )

        @Option(help: "A built-in architecture (probe-alibi, probe-rotary, probe-sinusoidal, probe-t5, probe-nope).")
        var preset: String?
        @Option(help: "An architecture JSON or Hugging Face config.json to train from scratch.") var architecture:
            String?
        @Option(help: "A checkpoint whose weights (and architecture) to start from.") var checkpoint: String?
        @Option(help: "The training data: a .tokens.zst dataset (extrapolate dataset pack).") var data: String
        @Option(parsing: .unconditional, help: "Optimizer steps.") var steps: Int?
        @Option(help: "The run folder: checkpoints, train-state.safetensors, train.jsonl.") var out: String
        @Option(parsing: .unconditional, help: "Tokens per window that predict (default: the trained length).")
        var length: Int?
        @Option(parsing: .unconditional, help: "Windows per micro-batch.") var batch: Int = 32
        @Option(parsing: .unconditional, help: "Micro-batches per step (gradient accumulation).") var accumulate: Int =
            1
        @Option(parsing: .unconditional, help: "Peak learning rate.") var learningRate: Double = 2e-3
        @Option(parsing: .unconditional, help: "The learning rate at the last step.") var minLearningRate: Double = 0
        @Option(parsing: .unconditional, help: "Steps of linear warm-up.") var warmup: Int = 100
        @Option(parsing: .unconditional, help: "AdamW's decoupled weight decay (matrices only).") var weightDecay:
            Double = 0.1
        @Option(parsing: .unconditional, help: "AdamW's β1.") var beta1: Double = 0.9
        @Option(parsing: .unconditional, help: "AdamW's β2.") var beta2: Double = 0.95
        @Option(parsing: .unconditional, help: "Clip the global gradient norm to this (0: no clipping).") var clip:
            Double = 1.0
        @Option(parsing: .unconditional, help: "Fixes the initial weights and the data order.") var seed: UInt64 = 1234
        @Option(help: "random (windows at random starts) or sequential.") var order: DataOrder = .random
        @Option(parsing: .unconditional, help: "A checkpoint every this many steps (and after the last).")
        var saveEvery: Int = 500
        @Flag(help: "Continue the run in --out from its train-state.safetensors (its own settings).") var resume = false
        @Option(parsing: .unconditional, help: "Threads to compute with (default: every core this process may use).")
        var threads: Int?
        @Option(
            help: """
                Checkpoints as step-N.safetensors (safetensors) or Hugging Face checkpoint-N/ folders (hf: config.json \
                and model.safetensors); auto: hf when the model comes from a config.json.
                """)
        var format: CheckpointFormat = .auto
        @Flag(help: "Also write TensorBoard scalars (loss, learning rate, gradient norm, tokens/s) into --out.")
        var tensorboard = false

        public init() {}

        public func validate() throws {
            let sources = [preset, architecture, checkpoint].compactMap { $0 }.count
            if !resume, sources != 1 {
                throw ValidationError("name the model with exactly one of --preset, --architecture, --checkpoint")
            }
            if !resume, steps == nil { throw ValidationError("--steps is required (except with --resume)") }
            if let steps, steps < 1 { throw ValidationError("--steps must be at least 1") }
            if batch < 1 || accumulate < 1 { throw ValidationError("--batch and --accumulate must be at least 1") }
            if let length, length < 1 { throw ValidationError("--length must be at least 1") }
            if learningRate <= 0 || minLearningRate < 0 || minLearningRate > learningRate {
                throw ValidationError("need 0 < --learning-rate and 0 ≤ --min-learning-rate ≤ --learning-rate")
            }
            if warmup < 0 || saveEvery < 1 || clip < 0 || weightDecay < 0 {
                throw ValidationError("--warmup, --clip and --weight-decay must not be negative; --save-every ≥ 1")
            }
            if !(0..<1).contains(beta1) || !(0..<1).contains(beta2) {
                throw ValidationError("--beta1 and --beta2 must be in [0, 1)")
            }
            if let preset, Architecture.presets[preset] == nil {
                throw ValidationError(
                    "no preset '\(preset)'; there are \(Architecture.presets.keys.sorted().joined(separator: ", "))")
            }
            if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        }

        public func run() throws {
            if let threads { Kernels.threads = threads }
            let settings = try trainingSettings()
            let source: ModelSource
            if let preset, let declared = Architecture.presets[preset] {
                source = .architecture(declared)
            } else if let architecture {
                do { source = .architecture(try ArchitectureFile.load(path: architecture)) } catch {
                    throw CommandError("\(error)")
                }
            } else {
                source = .checkpoint(path: checkpoint ?? "", architectureFile: nil)
            }
            let run: TrainingRun
            do {
                run = try TrainingRun(source: source, data: data, folder: out, settings: settings, resume: resume)
            } catch {
                throw CommandError(error.description)
            }
            signal(SIGINT) { _ in stopRequested = 1 }
            signal(SIGTERM) { _ in stopRequested = 1 }
            let progress = Progress(total: run.settings.steps, start: run.step)
            let scalars = tensorboard ? try TrainingScalars(folder: out) : nil
            let path: String?
            do {
                path = try run.run(shouldStop: { stopRequested != 0 }) {
                    progress.show($0)
                    scalars?.write($0)
                }
            } catch {
                progress.finish()
                throw CommandError("\(out): \(error.description)")
            }
            progress.finish()
            let saved = path.map { " Last checkpoint: \($0)." } ?? ""
            if run.step < run.settings.steps {
                print(
                    "Stopped at step \(run.step) of \(run.settings.steps).\(saved) Continue with --resume --out \(out)."
                )
            } else {
                print("Trained \(run.step) steps.\(saved)")
            }
        }
    }
}
