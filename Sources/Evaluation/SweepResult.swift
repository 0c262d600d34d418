import Checkpoints
import Engine
import Foundation

/// A checkpoint as results name it: where it is, which run and step, what it is.
public struct CheckpointSummary: Sendable, Hashable, Codable {
    /// The path given.
    public var checkpoint: String
    public var run: String
    public var step: Int?
    /// The architecture's name, content hash and trained length.
    public var architecture: String
    public var architectureHash: String
    public var trainedLength: Int
    /// Where the trained length came from (`configured: --trained-length`, `config: max_position_embeddings`,
    /// `assumed default: …`); `nil` in results stored before it was recorded.
    public var trainedLengthSource: String?
    /// `key = value` of each config.json key the importer did not read (`ConfigAudit`); `nil` when there were none
    /// or no config.json was read.
    public var configNotRead: [String]?
    /// Why these numbers may not describe the model the config describes (`ConfigAudit.warning`).
    public var configWarning: String?
    /// The arithmetic of the model's products (`--precision`); `nil` in results stored before it was recorded, which
    /// were all float32.
    public var precision: Precision?

    public init(
        checkpoint: String, name: CheckpointName, architecture: String, architectureHash: String, trainedLength: Int,
        trainedLengthSource: String? = nil
    ) {
        self.checkpoint = checkpoint
        run = name.run
        step = name.step
        self.architecture = architecture
        self.architectureHash = architectureHash
        self.trainedLength = trainedLength
        self.trainedLengthSource = trainedLengthSource
    }

    /// Run and step, ordered by run then step.
    public var name: CheckpointName { CheckpointName(run: run, step: step, scheme: .plain) }
    /// `run step N` (or the run alone): what a table row or plot legend calls this checkpoint.
    public var label: String { name.description }
}

/// One point of a sweep: one checkpoint, one series (the protocol, or a rotary extension), one length.
public struct SweepPoint: Sendable, Hashable, Codable {
    /// Which checkpoint (path, run, step).
    public var checkpoint: String
    public var run: String
    public var step: Int?
    /// The protocol's name for the plain model, or the rotary extension's.
    public var series: String
    public var length: Int
    /// The checkpoint's trained length, where it came from (`CheckpointSummary.trainedLengthSource`), and
    /// `length / trainedLength`.
    public var trainedLength: Int
    public var trainedLengthSource: String?
    public var multiple: Double
    /// Headline numbers, repeated from `result` so scripts need not compute them.
    public var perplexity: Double?
    public var meanNLL: Double?
    public var tokens: Int?
    public var interval: Interval?
    public var result: EvaluationResult?
    /// Why the length was not evaluated (learned positions past their table).
    public var unsupported: String?
    /// What to be careful about (an interval from too few windows, or why it is missing).
    public var warnings: [String]
    /// The data it was scored on (path and checksum); `nil` in results stored before points recorded it.
    public var data: DataReference?
    /// Config keys the importer did not read (`CheckpointSummary.configNotRead`).
    public var configNotRead: [String]?
    /// A passkey result (the daemon's passkey jobs): one cell of length × depth, its trials and accuracy; the
    /// perplexity fields are then empty.
    public var passkey: PasskeyResult.Cell?
    /// The arithmetic of the products (`--precision`): float32 or bf16; `nil` in results stored before it was
    /// recorded, which were all float32 (`computedPrecision`).
    public var precision: Precision?

    /// `precision`, float32 when the result predates it.
    public var computedPrecision: Precision { precision ?? .float32 }

    public init(
        checkpoint: CheckpointSummary, series: String, length: Int, result: EvaluationResult?, interval: Interval?,
        unsupported: String? = nil, warnings: [String] = []
    ) {
        self.checkpoint = checkpoint.checkpoint
        run = checkpoint.run
        step = checkpoint.step
        self.series = series
        self.length = length
        trainedLength = checkpoint.trainedLength
        trainedLengthSource = checkpoint.trainedLengthSource
        multiple = Double(length) / Double(max(checkpoint.trainedLength, 1))
        perplexity = result?.perplexity
        meanNLL = result?.meanNLL
        tokens = result?.tokens
        self.interval = interval
        self.result = result
        self.unsupported = unsupported
        self.warnings = warnings + (checkpoint.configWarning.map { [$0] } ?? [])
        configNotRead = checkpoint.configNotRead
        precision = checkpoint.precision
    }

    /// The label of the series in a table or legend: the checkpoint, with the series when it is an extension, and
    /// the precision when it is not float32.
    public func label(protocolName: String) -> String {
        let name = CheckpointName(run: run, step: step, scheme: .plain).description
        let label = series == protocolName ? name : "\(name) \(series)"
        return computedPrecision == .float32 ? label : "\(label) (\(computedPrecision.rawValue))"
    }
}

/// What a sweep produced: the settings, the data, the checkpoints (ordered by run, then step) and every point.
public struct SweepResult: Sendable, Hashable, Codable {
    public var settings: EvaluationSettings
    /// The data path and checksum, and the targets scored at every length.
    public var data: DataReference
    public var targets: Int
    public var checkpoints: [CheckpointSummary]
    public var points: [SweepPoint]
    /// Passkey retrieval of each checkpoint (`sweep --tasks …,passkey`), in checkpoint order; absent otherwise.
    public var passkey: [PasskeyResult]?
    /// The protocol's name, as every point's `series` calls the plain model.
    public var protocolName: String { settings.evaluationProtocol.description }
}
