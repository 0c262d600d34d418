import ArgumentParser
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

/// The evaluation data and how windows are cut: `sweep` and `compare`.
struct EvaluationOptions: ParsableArguments {
    @Option(help: "A .tokens.zst dataset, or a raw little-endian token file (then --dtype says its width).") var data:
        String
    @Option(help: "Width of a raw token file.") var dtype: TokenDType = .uint16
    @Option(help: "nonoverlapping (the paper's default), sliding:S (stride S), or last-half (llama.cpp).")
    var `protocol`: EvaluationProtocol = .nonoverlapping
    @Option(
        parsing: .unconditional,
        help: "Targets scored at every length (default: 4 × the longest length, at most the data).")
    var budget: Int?
    @Option(parsing: .unconditional, help: "First token of the span to score.") var offset: Int = 0
    @Option(help: "BOS in front of windows: none, first or every (needs --bos-token).") var bos: BOSPlacement = .none
    @Option(help: "The BOS token id.") var bosToken: Int?
    @Flag(help: "Cut windows inside each document instead of across the stream (.tokens.zst files mark documents).")
    var perDocument = false
    @Option(parsing: .unconditional, help: "Bootstrap resamples for the 95% intervals (0: none).") var bootstrap: Int =
        1000
    @Option(help: "Seed of the bootstrap.") var seed: UInt64 = 0

    func validate() throws {
        do { try settings(lengths: .standard, extensions: []).validate() } catch {
            throw ValidationError(error.description)
        }
    }

    /// The settings value the library evaluates with.
    func settings(lengths: LengthGrid, extensions: [RotaryExtension]) -> EvaluationSettings {
        EvaluationSettings(
            data: DataReference(path: data, dtype: dtype), lengths: lengths, evaluationProtocol: `protocol`,
            budget: budget, offset: offset, bos: bos, bosToken: bosToken.map { Int32(clamping: $0) },
            perDocument: perDocument, resamples: bootstrap, seed: seed, extensions: extensions)
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

/// Writes `text` to `path`, with the path in the error.
func write(_ text: String, to path: String) throws {
    do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
        throw ValidationError("cannot write \(path): \((error as NSError).localizedDescription)")
    }
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
