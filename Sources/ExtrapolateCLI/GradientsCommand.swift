import ArgumentParser
import Foundation
import Kernels
import TokenData
import Training

extension Extrapolate {
    /// `extrapolate gradients`: every parameter's gradient of the mean NLL of one window, as safetensors.
    public struct GradientsCommand: ParsableCommand {
        public static let configuration = CommandConfiguration(
            commandName: "gradients",
            abstract: "Write d(mean NLL)/d(parameter) of one window of tokens for every parameter of a checkpoint.",
            discussion: """
                Reads --length + 1 tokens after --offset: the first --length predict the token after each, as a \
                training step and the evaluation's window do. The gradients are exact in fp32 (the engine's forward \
                kernels and a hand-written backward pass, checked against torch.autograd: Docs/training.md) and are \
                written to --out as a safetensors file with one F32 tensor per checkpoint tensor, under the \
                checkpoint's own name and shape (a GPT-2 Conv1D matrix stays [in, out], a fused q/k/v stays fused). \
                Its metadata records the loss and the length.

                Every layer kind the engine evaluates is covered, FIRE included; a matrix stored [in, out] and shared \
                by several layers is refused by name before any work. Weights stored in 16 bits are widened to fp32.
                """
        )

        @Option(help: "A checkpoint folder, .safetensors or PyTorch (.pt, .bin) file, or an index.") var checkpoint:
            String
        @Option(
            help: "An architecture JSON or config.json to bind the weights with (a PyTorch file that carries none).")
        var architecture: String?
        @Option(help: "A .tokens.zst dataset or a raw little-endian token file.") var tokens: String
        @Option(parsing: .unconditional, help: "Tokens that predict (the window's length L; L + 1 are read).")
        var length: Int
        @Option(parsing: .unconditional, help: "Tokens to skip at the start of the file.") var offset: Int = 0
        @Option(help: "Width of a raw token file (a .tokens.zst file says its own).") var dtype: TokenDType = .uint16
        @Option(help: "The safetensors file to write (written whole, then renamed into place).") var out: String
        @Option(parsing: .unconditional, help: "Threads to compute with (default: every core this process may use).")
        var threads: Int?
        @OptionGroup var output: OutputOptions

        public init() {}

        public func validate() throws {
            if length < 1 { throw ValidationError("--length must be at least 1") }
            if offset < 0 { throw ValidationError("--offset must not be negative") }
            if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        }

        public func run() throws {
            if let threads { Kernels.threads = threads }
            let window: [Int32]
            do { window = try TokenFile.read(path: tokens, dtype: dtype, offset: offset, count: length + 1) } catch {
                throw CommandError("\(error)")
            }
            let summary: Gradients.Summary
            do {
                summary = try Gradients.write(
                    checkpoint: checkpoint, architectureFile: architecture, tokens: window, to: out)
            } catch { throw CommandError(error.description) }
            try output.emit(
                json: {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
                    return String(decoding: try encoder.encode(summary), as: UTF8.self)
                },
                text: {
                    String(
                        format: "%@: %d tensors, mean NLL %.6f over %d tokens, gradient norm %.6g",
                        summary.path, summary.tensors, summary.loss, summary.tokens, summary.norm)
                })
        }
    }
}
