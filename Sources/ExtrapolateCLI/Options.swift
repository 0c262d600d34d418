import ArgumentParser
import Checkpoints
import Evaluation
import Foundation
import Kernels
import TokenData

extension TokenDType: ExpressibleByArgument {}
extension BOSPlacement: ExpressibleByArgument {}
extension RotaryExtension: ExpressibleByArgument {}
extension TokenSourceFormat: ExpressibleByArgument {}

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

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    /// Applies the options to the engine; call before loading or scoring.
    func apply() {
        if let threads { Kernels.threads = threads }
    }
}

/// The evaluation data and how windows are cut: `sweep`, `compare`, `watch` and `serve` (one declaration, one set of
/// defaults: `EvaluationSettings.Defaults`). Every option is optional, so a `--config` file's values stand unless a
/// flag is given.
struct EvaluationOptions: ParsableArguments {
    typealias Defaults = EvaluationSettings.Defaults
    @Option(help: "A .tokens.zst dataset, or a raw little-endian token file (then --dtype says its width).")
    var data: String?
    @Option(help: "Width of a raw token file (default \(Defaults.dtype.rawValue)).") var dtype: TokenDType?
    @Option(
        help: ArgumentHelp(
            "nonoverlapping (the paper's, default), sliding:S (each window advances S tokens, 1 ≤ S ≤ the length), "
                + "or last-half (llama.cpp)."))
    var `protocol`: EvaluationProtocol?
    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Targets scored at every length (default: enough for 20 windows of the longest length, at most the "
                + "data; the daemon's longest is at least 16 × the trained length).",
            discussion:
                "Fewer than 20 windows make a bootstrap interval unreliable: results and the page flag such intervals. "
                + "Scoring time grows with the budget; the command says how many tokens it will score before it starts."
        ))
    var budget: Int?
    @Option(parsing: .unconditional, help: "First token of the span to score (default \(Defaults.offset)).")
    var offset: Int?
    @Option(help: "BOS in front of windows: none (default), first or every (needs --bos-token).")
    var bos: BOSPlacement?
    @Option(help: "The BOS token id.") var bosToken: Int?
    @Flag(help: "Cut windows inside each document instead of across the stream (.tokens.zst files mark documents).")
    var perDocument = false
    @Option(
        parsing: .unconditional,
        help: "Bootstrap resamples for the 95% intervals (default \(Defaults.resamples); 0: none).")
    var bootstrap: Int?
    @Option(help: "Seed of the bootstrap (default \(Defaults.seed)).") var seed: UInt64?
    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "The length the checkpoints were trained at: 4x means 4 × this (default: what the checkpoint records).",
            discussion:
                "Read in order from a trainer's record in the checkpoint (safetensors metadata extrapolate.trainedLength, "
                + "nanoGPT's block_size, fairseq's tokens_per_sample), else config.json (max_position_embeddings and "
                + "the like, which may exceed what a run trained at), else the family's default; results say which."))
    var trainedLength: Int?

    func validate() throws {
        do { try overrides(data: data ?? "-").settings().validate() } catch { throw ValidationError(error.description) }
    }

    /// The options as overrides of a configuration file's (or the defaults').
    func overrides(data: String? = nil) -> EvaluationOverrides {
        var overrides = EvaluationOverrides()
        overrides.data = data ?? self.data
        overrides.dtype = dtype
        overrides.evaluationProtocol = `protocol`
        overrides.budget = budget
        overrides.offset = offset
        overrides.bos = bos
        overrides.bosToken = bosToken.map { Int32(clamping: $0) }
        overrides.perDocument = perDocument ? true : nil
        overrides.resamples = bootstrap
        overrides.seed = seed
        overrides.trainedLength = trainedLength
        return overrides
    }

    /// The settings `sweep` and `compare` evaluate with.
    /// - Throws: `ValidationError` without `--data` or for an invalid combination.
    func settings(lengths: LengthGrid?, extensions: [RotaryExtension]) throws -> EvaluationSettings {
        var overrides = overrides()
        overrides.lengths = lengths
        overrides.extensions = extensions
        do { return try overrides.settings() } catch { throw ValidationError(error.description) }
    }
}

/// The lengths and rotary extensions of `sweep`, `watch` and `serve`.
struct LengthOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Lengths: multiples of the trained length (1x,2x), tokens (512,1024), a mix, or L+k (the paper's grid); "
                + "default \(EvaluationSettings.Defaults.lengths)."),
        transform: { text in try LengthGrid(parsing: text) })
    var lengths: LengthGrid?
    @Option(
        parsing: .upToNextOption,
        help: ArgumentHelp(
            "Rotary models: also evaluate these inference-time extensions, factor = length / trained "
                + "(linear ntk dynamic yarn llama3)."))
    var extensions: [RotaryExtension] = []
    @Flag(help: "Shorthand for every rotary extension.") var allExtensions = false

    /// The extensions asked for (`nil`: none given).
    var chosenExtensions: [RotaryExtension]? {
        allExtensions ? RotaryExtension.allCases : extensions.isEmpty ? nil : extensions
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
