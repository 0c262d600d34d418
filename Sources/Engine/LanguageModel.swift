import Architecture
import Checkpoints
import Foundation
import Kernels

/// A checkpoint bound to its architecture, ready to score token sequences on the CPU.
///
/// ```swift
/// let model = try LanguageModel.load("runs/alibi/checkpoint-2000")
/// let logprobs = try model.logProbabilities(tokens)   // tokens.count − 1 values
/// ```
public final class LanguageModel: @unchecked Sendable {
    /// The architecture the weights were bound to.
    public let architecture: Architecture
    /// Where the weights came from.
    public let location: CheckpointLocation
    /// Vocabulary size.
    public let vocabulary: Int
    /// Parameters bound (tied and shared tensors once).
    public let parameterCount: Int
    /// What loading decided from the tensors rather than the config (empty when the config was taken as it is).
    public internal(set) var notes: [String] = []
    /// The training step a PyTorch checkpoint records inside (nanoGPT's `iter_num`), for names that carry none.
    public internal(set) var recordedStep: Int?
    /// The trained length (`architecture.trainedLength`) and where it came from.
    public internal(set) var trainedLength: TrainedLength
    /// The keys of the config the architecture was imported from that its importer did not read (`nil` when it
    /// came from no config.json).
    public internal(set) var configAudit: ConfigAudit?
    package let bound: BoundModel
    /// The arithmetic of its matrix products (`--precision`).
    public private(set) var precision = Precision.float32

    /// Rows of the feed-forward hidden activations computed at once (bounds memory; results do not depend on it).
    public var feedForwardChunk = 4096
    /// Rows of logits computed at once per thread: memory is `threads × logitsChunk × vocabularySlice` floats,
    /// never `length × vocabulary`.
    public var logitsChunk = 512
    /// Vocabulary columns of logits computed at once (the log-softmax folds slices, so memory does not grow with
    /// the vocabulary).
    public var vocabularySlice = 4096

    /// Finds, reads and binds the checkpoint at `path` (a folder, a `.safetensors` or PyTorch file, or an index).
    /// - Parameters:
    ///   - architectureFile: an architecture JSON (or `config.json`) to bind with instead of what the checkpoint
    ///     carries.
    ///   - trainedLength: the trained length the user declares, over what the checkpoint or its config says.
    ///   - allowUnknownConfigKeys: accept config keys the importer does not read that are known to change the model
    ///     (`--allow-unknown-config-keys`); otherwise such a config is refused.
    ///   - weights: how 16-bit matrices are held (`WeightStorage`; the numbers are the same either way); default
    ///     `weightStorage`.
    ///   - precision: the arithmetic of the matrix products; default `precision` (`float32`).
    /// - Throws: `EngineError` naming the file and every mismatch; `.precisionUnavailable` before reading anything
    ///   when this CPU cannot compute in `precision`.
    public static func load(
        _ path: String, architectureFile: String? = nil, trainedLength: Int? = nil,
        allowUnknownConfigKeys: Bool = false,
        weights: WeightStorage? = nil, precision: Precision? = nil
    ) throws(EngineError) -> LanguageModel {
        if let reason = (precision ?? Self.precision).unavailableReason { throw .precisionUnavailable(reason) }
        var location: CheckpointLocation
        let checkpoint: Checkpoint
        do {
            location = try CheckpointLocation.discover(path)
            checkpoint = try location.open()
        } catch { throw .checkpoint(error) }
        if let architectureFile {
            guard FileManager.default.fileExists(atPath: architectureFile) else {
                throw .architecture(.unreadable(path: architectureFile, reason: "no such file (--architecture)"))
            }
            if checkpoint.metadata[CheckpointLocation.architectureMetadataKey] != nil {
                throw .architectureGivenTwice(checkpoint: location.weightsPath, file: architectureFile)
            }
            location.architectureFile = architectureFile
        }
        var found = try architecture(
            for: location, checkpoint: checkpoint, allowUnknownConfigKeys: allowUnknownConfigKeys)
        if let trainedLength {
            found.architecture.trainedLength = trainedLength
            found.trainedLength = TrainedLength(tokens: trainedLength, source: .configured, key: "--trained-length")
        }
        let model = try LanguageModel(
            architecture: found.architecture, checkpoint: checkpoint, location: location,
            ignoring: found.ignoredSuffixes, weights: weights, precision: precision)
        model.notes = found.notes
        model.recordedStep = checkpoint.extras["iter_num"]?.int
        model.trainedLength = found.trainedLength
        model.configAudit = found.configAudit
        return model
    }

    /// What a checkpoint's architecture is, and how it was decided.
    public struct CheckpointArchitecture: Sendable {
        /// The architecture to bind.
        public var architecture: Architecture
        /// Tensor-name suffixes the family stores as buffers, never weights (`.attn.masked_bias`, …).
        public var ignoredSuffixes: [String]
        /// Decisions taken from the tensors where the config is read differently by different writers.
        public var notes: [String]
        /// The trained length and where it came from.
        public var trainedLength: TrainedLength
        /// The keys of the config.json that were not read (`nil`: no config.json was read).
        public var configAudit: ConfigAudit?
    }

    /// The architecture of a checkpoint: its embedded architecture JSON, else the `config.json` beside it
    /// (reconciled with the stored tensor shapes, `HuggingFace.reconcile`).
    /// - Parameter allowUnknownConfigKeys: accept config keys known to change the model that are not read.
    public static func architecture(
        for location: CheckpointLocation, checkpoint: Checkpoint, allowUnknownConfigKeys: Bool = false
    ) throws(EngineError) -> CheckpointArchitecture {
        do throws(ArchitectureError) {
            if let json = checkpoint.metadata[CheckpointLocation.architectureMetadataKey] {
                let path = "\(location.weightsPath) (metadata '\(CheckpointLocation.architectureMetadataKey)')"
                var architecture = try Architecture.decode(json: Data(json.utf8), path: path)
                var key = CheckpointLocation.architectureMetadataKey
                if let recorded = checkpoint.metadata[TrainedLength.metadataKey] {
                    guard let tokens = Int(recorded), tokens >= 2 else {
                        throw ArchitectureError.badConfig(
                            path: location.weightsPath, key: "metadata '\(TrainedLength.metadataKey)'",
                            reason: "expected a whole number of tokens of at least 2, found '\(recorded)'")
                    }
                    architecture.trainedLength = tokens
                    key = TrainedLength.metadataKey
                }
                try architecture.validate(readFrom: path)
                return CheckpointArchitecture(
                    architecture: architecture, ignoredSuffixes: [], notes: [],
                    trainedLength: TrainedLength(
                        tokens: architecture.trainedLength, source: .checkpointMetadata, key: key))
            }
            if let file = location.architectureFile {
                let (architecture, audit) = try ArchitectureFile.loadAudited(
                    path: file, allowingUnknownKeys: allowUnknownConfigKeys)
                try architecture.validate(readFrom: file)
                // A config.json given as the file says L by one of its keys; an architecture JSON states it itself.
                let trained =
                    HuggingFace.trainedLength(of: architecture, configAt: URL(fileURLWithPath: file))
                    ?? TrainedLength(tokens: architecture.trainedLength, source: .architectureFile, key: file)
                return CheckpointArchitecture(
                    architecture: architecture, ignoredSuffixes: [], notes: [], trainedLength: trained,
                    configAudit: audit)
            }
            if let nano = try nanoGPT(checkpoint) { return nano }
            if let fairseq = try fairseq(checkpoint) { return fairseq }
            if let composer = try composer(checkpoint, allowingUnknownKeys: allowUnknownConfigKeys) { return composer }
            if let config = location.config {
                let url = URL(fileURLWithPath: config)
                let imported = try HuggingFace.imported(configAt: url, allowingUnknownKeys: allowUnknownConfigKeys)
                let modelType = imported.audit.modelType
                let (architecture, notes) = HuggingFace.reconcile(imported.architecture, modelType: modelType) {
                    checkpoint.info($0)?.shape
                }
                let trained =
                    HuggingFace.trainedLength(of: architecture, configAt: url)
                    ?? TrainedLength(tokens: architecture.trainedLength, source: .config, key: config)
                return CheckpointArchitecture(
                    architecture: architecture, ignoredSuffixes: HuggingFace.bufferSuffixes[modelType] ?? [],
                    notes: notes, trainedLength: trained, configAudit: imported.audit)
            }
        } catch { throw .architecture(error) }
        throw .noArchitecture(path: location.weightsPath)
    }

    /// Binds `checkpoint` to `architecture`.
    /// - Parameters:
    ///   - ignoring: tensor-name suffixes that are buffers, not weights (`.attn.masked_bias`, …).
    ///   - weights: how 16-bit matrices are held (`WeightStorage`); default `weightStorage`.
    ///   - precision: the arithmetic of the matrix products; default `precision` (`float32`). In bf16 every
    ///     projection is packed in bfloat16 as it is bound, whatever the checkpoint stores.
    public init(
        architecture: Architecture, checkpoint: Checkpoint, location: CheckpointLocation? = nil,
        ignoring: [String] = [],
        weights: WeightStorage? = nil, precision: Precision? = nil
    ) throws(EngineError) {
        let precision = precision ?? Self.precision
        if let reason = precision.unavailableReason { throw .precisionUnavailable(reason) }
        do { try architecture.validate(readFrom: checkpoint.path) } catch { throw .architecture(error) }
        self.architecture = architecture
        self.location = location ?? CheckpointLocation(weights: .file(checkpoint.path), config: nil)
        let halfBytes = checkpoint.names.reduce(0) { total, name in
            guard let info = checkpoint.info(name), Weights.halfFormat(info.dtype) != nil else { return total }
            return total + info.count * 2
        }
        // Packing reads 16-bit matrices as stored: widening them first would only cost memory.
        bound = try Binder.bind(
            architecture, checkpoint: checkpoint, ignoredSuffixes: ignoring,
            keepHalf: precision == .bf16 || (weights ?? Self.weightStorage).keepsHalf(halfBytes: halfBytes),
            pack: precision == .bf16)
        self.precision = precision
        parameterCount = architecture.manifest.parameterCount
        vocabulary = bound.embedding.vocabulary
        trainedLength = TrainedLength(tokens: architecture.trainedLength, source: .architectureFile, key: "")
    }

    /// Whether the model is defined for windows of `length` tokens.
    public func support(at length: Int) -> Support { architecture.support(at: length) }

    /// The version of the numerics: stored results carry it, and a daemon re-evaluates results of another version.
    /// Raise it whenever a change to binding, kernels or accounting can change a number.
    public static let engineVersion = "engine-5"

    /// A generous estimate of the bytes a pass over a window of `length` tokens needs with `threads` threads: the
    /// weights as held (`weightBytes`) and the fp32 scratch their products widen into (`wideningBytes`), about ten
    /// `[length, width]` activation buffers, each thread's feed-forward and logits chunks, and the attention tiles.
    /// The daemon compares it with `--memory-limit` before trying a length; `sweep` and `score` print it.
    public func memoryEstimate(length: Int, threads: Int) -> Int {
        let width = bound.embedding.width
        let activations = 10 * length * width
        let perThread = feedForwardChunk * 8 * width + logitsChunk * min(vocabulary, vocabularySlice) + 64 * 1024
        return weightBytes + wideningBytes + 4 * (activations + threads * perThread)
    }

    /// How models loaded without saying hold their 16-bit matrices (`extrapolate --weights`); set it before loading.
    public nonisolated(unsafe) static var weightStorage = WeightStorage.automatic

    /// The precision of models loaded without saying (`extrapolate --precision`); set it before loading.
    public nonisolated(unsafe) static var precision = Precision.float32

    /// One line for a terminal: how the weights are held and what a pass over `length` tokens is estimated to take.
    public func memorySummary(length: Int, threads: Int) -> String {
        func size(_ bytes: Int) -> String {
            bytes >= 1_000_000_000
                ? String(format: "%.2f GB", Double(bytes) / 1e9) : String(format: "%.1f MB", Double(bytes) / 1e6)
        }
        var line = "weights held as \(heldPrecision): \(size(weightBytes))"
        if wideningBytes > 0 { line += " + \(size(wideningBytes)) widening scratch" }
        return line + "; estimated peak at \(length) tokens: \(size(memoryEstimate(length: length, threads: threads)))"
    }

    /// Bytes the weights take in memory: 2 per value for matrices kept at their stored 16-bit precision, 4 for the
    /// rest (norms, biases and position tables are always fp32). A tensor shared by several layers counts once.
    public var weightBytes: Int { bound.weightBytes }

    /// The largest fp32 scratch a pass holds at once for 16-bit matrices (the three of a feed-forward block, or the
    /// vocabulary head); 0 when every matrix is fp32.
    public var wideningBytes: Int { bound.wideningBytes }

    /// The precision the matrices are held at: `"float32"`, or the 16-bit format(s) kept as stored (`"bf16"`,
    /// `"f16"`, or `"bf16+float32"` when only some were 16-bit).
    public var heldPrecision: String { bound.heldPrecision }

    /// The log-probability of every token after the first, given the tokens before it (one causal pass).
    /// - Returns: `tokens.count − 1` values; value `t` is `log p(tokens[t+1] | tokens[0…t])`.
    /// - Throws: for unsupported lengths and out-of-vocabulary tokens.
    public func logProbabilities(_ tokens: [Int32]) throws(EngineError) -> [Double] {
        guard tokens.count >= 2 else { throw .tooFewTokens(count: tokens.count) }
        return try score(inputs: tokens, targets: Array(tokens.dropFirst()))
    }

    /// The first super-block of the row blocks every matrix product of a pass is cut into (`Kernels.rowBlocks`):
    /// the trained length, so the lengths of a doubling grid from it are block boundaries.
    package var rowBase: Int { max(architecture.trainedLength, 1) }

    /// Whether a pass over `prefix` tokens computes exactly (bit for bit) what a pass over `length` tokens starting
    /// with the same tokens computes at its first `prefix` positions: the model is prefix-stable
    /// (`scoresArePrefixStable`) and `prefix` ends a row block of the longer pass (the trained length times a power
    /// of two always does), with the same thread count.
    public func computesExactPrefix(_ prefix: Int, of length: Int) -> Bool {
        scoresArePrefixStable && Kernels.rowBlocksShare(prefix: prefix, of: length, base: rowBase)
    }

    /// One causal pass over `inputs` (positions `0…inputs.count−1`) scoring `targets[t]` as the token after `inputs[t]`.
    ///
    /// This is the evaluation protocols' window: `L` input tokens predict the `L` tokens that follow them, and the
    /// model runs at length `L` exactly (not `L + 1`), which matters for learned tables and length-dependent
    /// rotary extensions. `targets` may be shorter than `inputs` (the last positions are then not scored).
    public func logProbabilities(inputs: [Int32], targets: [Int32]) throws(EngineError) -> [Double] {
        guard !inputs.isEmpty, !targets.isEmpty, targets.count <= inputs.count else {
            throw .tooFewTokens(count: min(inputs.count, targets.count))
        }
        return try score(inputs: inputs, targets: targets)
    }

    /// One causal pass as `logProbabilities(inputs:targets:)`, also saying at every position whether the target is
    /// the token greedy decoding picks there (its logit is the largest): teacher-forced greedy decoding, in one pass.
    /// - Returns: the log-probabilities and, for each, whether the target is the argmax.
    public func scoresWithGreedy(inputs: [Int32], targets: [Int32]) throws(EngineError)
        -> (logProbabilities: [Double], greedy: [Bool])
    {
        guard !inputs.isEmpty, !targets.isEmpty, targets.count <= inputs.count else {
            throw .tooFewTokens(count: min(inputs.count, targets.count))
        }
        var greedy = [Bool](repeating: false, count: targets.count)
        let scores = try greedy.withUnsafeMutableBufferPointer { (flags) throws(EngineError) in
            try score(inputs: inputs, targets: targets, greedy: flags.baseAddress)
        }
        return (scores, greedy)
    }

    private func score(inputs: [Int32], targets: [Int32], greedy: UnsafeMutablePointer<Bool>? = nil)
        throws(EngineError) -> [Double]
    {
        let length = inputs.count
        if case .unsupported(let reason) = support(at: length) {
            throw .unsupportedLength(length: length, reason: reason)
        }
        for (index, token) in (inputs + targets).enumerated() where token < 0 || Int(token) >= vocabulary {
            throw .tokenOutOfRange(
                index: index < length ? index : index - length + 1, token: Int(token), vocabulary: vocabulary)
        }
        var run = Forward(
            tokens: inputs, feedForwardChunk: max(feedForwardChunk, 1), logitsChunk: max(logitsChunk, 1),
            vocabularySlice: precision == .bf16 ? (max(vocabularySlice, 1) + 31) / 32 * 32 : max(vocabularySlice, 1),
            rowBase: rowBase)
        run.bf16 = precision == .bf16
        do { return try run.scores(bound, targets: targets, greedy: greedy) } catch { throw .outOfMemory(error) }
    }

    init(
        architecture: Architecture, location: CheckpointLocation, vocabulary: Int, parameterCount: Int,
        bound: BoundModel
    ) {
        self.architecture = architecture
        self.location = location
        self.vocabulary = vocabulary
        self.parameterCount = parameterCount
        self.bound = bound
        trainedLength = TrainedLength(tokens: architecture.trainedLength, source: .architectureFile, key: "")
    }

}
