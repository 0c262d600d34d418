import ArgumentParser
import Checkpoints
import Engine
import Evaluation
import Foundation
import Kernels
import TokenData

extension TokenDType: ExpressibleByArgument {}
extension BOSPlacement: ExpressibleByArgument {}
extension RotaryExtension: ExpressibleByArgument {}
extension EvaluationTask: ExpressibleByArgument {}
extension TokenSourceFormat: ExpressibleByArgument {}
extension WeightStorage: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}

extension EvaluationProtocol: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
    public static var allValueStrings: [String] { ["nonoverlapping", "sliding:S", "last-half"] }
    public var defaultValueDescription: String { description }
}

/// Options of the commands that run models (`score`, `sweep`, `compare`).
struct EngineOptions: ParsableArguments {
    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Threads to compute with (default: every core this process may use).",
            discussion:
                "Matrix products are split by rows between these threads, each running OpenBLAS single-threaded; "
                + "results do not depend on the count beyond float rounding (≤ 1e-5)."))
    var threads: Int?

    @Option(
        help: ArgumentHelp(
            "How to hold weights stored in 16 bits: automatic, stored (2 bytes a value, widened just before each "
                + "product), float32 (widened at load).",
            discussion:
                "The numbers are identical bit for bit in every mode. automatic keeps them as stored when widening at "
                + "load would cost more than 768 MiB (a model of about 400 M parameters or more): a 7B bf16 "
                + "checkpoint then takes its 13.5 GB, not 27 GB."))
    var weights: WeightStorage = .automatic

    @Option(
        help: ArgumentHelp(
            "The arithmetic of the matrix products: float32 (exact, the default) or bf16.",
            discussion:
                "bf16 rounds both operands of every projection and of the vocabulary head to bfloat16 and accumulates "
                + "in fp32 (AVX512-BF16), about 1.5-2x faster on long windows; norms, attention, softmax and the "
                + "log-softmax stay fp32. Perplexities move by about 0.1-1% (Docs/engine.md); every result is "
                + "labelled bf16 and never answers a float32 query. Refused on a CPU without AVX512-BF16."))
    var precision: Precision = .float32

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    /// Applies the options to the engine; call before loading or scoring.
    func apply() throws {
        if let threads { Kernels.threads = threads }
        LanguageModel.weightStorage = weights
        if let reason = precision.unavailableReason { throw CommandError(reason) }
        LanguageModel.precision = precision
    }
}

/// Where a command writes its result: JSON on stdout instead of text, and files.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print JSON (Docs/json.md) instead of text.") var json = false
    @Option(help: "Also write the JSON to this file.") var jsonOutput: String?

    /// Writes `json()` to `--json-output`, and prints it or `text()`.
    func emit(json: () throws -> String, text: () -> String) throws {
        if let jsonOutput { try write(try json(), to: jsonOutput) }
        print(self.json ? try json() : text())
    }
}

/// Writes `text` to `path`, with the path and the cause in the error.
func write(_ text: String, to path: String) throws {
    do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
        throw CommandError("cannot write \(path): \(FileProblem.describe(error, path: path))")
    }
}

/// A failure while a well-formed command ran: one line on stderr and exit status 1, without the usage text that
/// ArgumentParser prints for a `ValidationError` (64 is for command lines that are wrong).
struct CommandError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Refuses to start: prints `Error: message` on one line and gives the usage-error status (64) without the usage
/// text, for a command line that is well formed but names something that cannot work (a missing data file).
func refusal(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("Error: \(message)\n".utf8))
    return ExitCode.validationFailure
}

/// Progress with an ETA on stderr at most once a second, and only when stderr is a terminal: a log file never
/// receives carriage returns or escape codes.
final class ProgressLine {
    private let started = Date()
    private var last = Date.distantPast
    private var shown = false
    private let enabled = isatty(STDERR_FILENO) == 1

    func update(_ fraction: Double, _ label: String) {
        guard enabled, Date().timeIntervalSince(last) > 1 else { return }
        last = Date()
        shown = true
        let elapsed = Date().timeIntervalSince(started)
        let eta = fraction > 0 ? elapsed * (1 - fraction) / fraction : 0
        FileHandle.standardError.write(
            Data(
                String(
                    format: "\r\u{1B}[K%5.1f%%  %@  elapsed %.0f s, ETA %.0f s", 100 * fraction,
                    label, elapsed, eta
                ).utf8))
    }

    func finish() { if shown { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) } }
}
