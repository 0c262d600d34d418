import Checkpoints
import Engine
import Foundation
import Kernels
import TokenData

/// One causal pass over one window of a token file: every token's log-probability and the headline numbers.
public struct ScoreResult: Sendable, Hashable, Codable {
    public var checkpoint: CheckpointSummary
    public var data: DataReference
    /// First token read, and the window length (tokens read).
    public var offset: Int
    public var length: Int
    /// Scored tokens (`length − 1`: the first token has no prediction).
    public var tokens: Int
    public var meanNLL: Double
    public var perplexity: Double
    /// Seconds to load the checkpoint and for the forward pass, and tokens per second of the pass.
    public var loadSeconds: Double
    public var seconds: Double
    public var tokensPerSecond: Double
    /// Threads, OpenBLAS kernel set and our own kernel set (`avx512`, `avx2`, `generic`) the pass ran on.
    public var threads: Int
    public var blasCore: String
    public var kernels: String
    /// The arithmetic of the products (`--precision`): float32 or bf16.
    public var precision: Precision
    /// The window's token ids, and `log p` of each (`null` for the first); omitted with `--summary`.
    public var tokenIds: [Int32]?
    public var logprobs: [Double?]?
    /// What the command decided for the user (a window shorter than asked, …).
    public var notes: [String]

    /// Scores `length` tokens (default: the trained length, or the whole file when it is shorter) from `offset`.
    /// - Throws: `EvaluationError` for unreadable data, unsupported lengths and tokens outside the vocabulary.
    public static func run(
        checkpoint path: String, architectureFile: String? = nil, data: DataReference, offset: Int, length: Int?,
        keepTokens: Bool, allowUnknownConfigKeys: Bool = false, announce: ((String) -> Void)? = nil
    ) throws(EvaluationError) -> ScoreResult {
        let started = Date()
        let loaded = try SweepCheckpoint.load(
            path, architectureFile: architectureFile, allowUnknownConfigKeys: allowUnknownConfigKeys)
        let loadSeconds = Date().timeIntervalSince(started)
        let trained = loaded.summary.trainedLength
        var notes: [String] = []
        if let unread = loaded.summary.configNotRead {
            notes.append("config.json not read: \(unread.joined(separator: ", "))")
        }
        if let warning = loaded.summary.configWarning { notes.append(warning) }
        let available: Int
        do { available = max(try TokenFile.count(path: data.path, dtype: data.dtype) - offset, 0) } catch {
            throw .data(error)
        }
        var window = length ?? trained
        if length == nil, available < window {
            guard available >= 2 else { throw .tooFewTokens(available: available, needed: 2) }
            notes.append(
                "the file holds \(available) tokens after offset \(offset), fewer than the trained length \(trained); "
                    + "scored all \(available)")
            window = available
        } else if length == nil {
            notes.append("no --length: scored the trained length, \(trained) tokens")
        }
        if case .unsupported(let reason) = loaded.model.support(at: window) {
            throw .engine(.unsupportedLength(length: window, reason: reason))
        }
        let tokens: [Int32]
        do { tokens = try TokenFile.read(path: data.path, dtype: data.dtype, offset: offset, count: window) } catch {
            throw .data(error)
        }
        let memory = loaded.model.memorySummary(length: window, threads: Kernels.threads)
        announce?(memory)
        notes.append(memory)
        let passStarted = Date()
        let values: [Double]
        do { values = try loaded.model.logProbabilities(tokens) } catch { throw .engine(error) }
        let seconds = Date().timeIntervalSince(passStarted)
        let meanNLL = -values.reduce(0, +) / Double(max(values.count, 1))
        return ScoreResult(
            checkpoint: loaded.summary, data: data, offset: offset, length: window, tokens: values.count,
            meanNLL: meanNLL, perplexity: exp(meanNLL), loadSeconds: loadSeconds, seconds: seconds,
            tokensPerSecond: Double(window) / max(seconds, 1e-9), threads: Kernels.threads,
            blasCore: Kernels.blasCore, kernels: Kernels.kernelSet, precision: loaded.model.precision,
            tokenIds: keepTokens ? tokens : nil,
            logprobs: keepTokens ? [nil] + values.map { $0 } : nil, notes: notes)
    }
}
