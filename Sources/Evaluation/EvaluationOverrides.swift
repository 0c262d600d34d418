import Engine
import TokenData

/// Evaluation settings as a flag or a configuration key gives them: every field optional, so defaults, a file's
/// `[evaluation]` table, a `[[runs]]` entry and command-line flags layer in that order. `sweep`, `compare`, `watch`
/// and `serve` all build their `EvaluationSettings` through `settings()`, so every default is stated once
/// (`EvaluationSettings.Defaults`).
public struct EvaluationOverrides: Sendable, Hashable {
    public var data: String?
    public var dtype: TokenDType?
    public var lengths: LengthGrid?
    public var evaluationProtocol: EvaluationProtocol?
    public var budget: Int?
    public var offset: Int?
    public var bos: BOSPlacement?
    public var bosToken: Int32?
    public var perDocument: Bool?
    public var resamples: Int?
    public var seed: UInt64?
    public var extensions: [RotaryExtension]?
    public var trainedLength: Int?
    public var allowUnknownConfigKeys: Bool?
    /// The arithmetic of the products (`--precision`, `precision = "bf16"`).
    public var precision: Precision?
    /// What to measure (the daemon's `tasks`; default perplexity), and passkey retrieval's settings.
    public var tasks: [EvaluationTask]?
    public var passkeyDepths: [Double]?
    public var passkeyTrials: Int?
    public var passkeySeed: UInt64?
    public var passkeyTokenizer: String?
    public var passkeyBytes: Bool?

    public init() {}

    /// `other`'s values where it has them, else these.
    public func overridden(by other: EvaluationOverrides) -> EvaluationOverrides {
        var merged = self
        merged.data = other.data ?? data
        merged.dtype = other.dtype ?? dtype
        merged.lengths = other.lengths ?? lengths
        merged.evaluationProtocol = other.evaluationProtocol ?? evaluationProtocol
        merged.budget = other.budget ?? budget
        merged.offset = other.offset ?? offset
        merged.bos = other.bos ?? bos
        merged.bosToken = other.bosToken ?? bosToken
        merged.perDocument = other.perDocument ?? perDocument
        merged.resamples = other.resamples ?? resamples
        merged.seed = other.seed ?? seed
        merged.extensions = other.extensions ?? extensions
        merged.trainedLength = other.trainedLength ?? trainedLength
        merged.allowUnknownConfigKeys = other.allowUnknownConfigKeys ?? allowUnknownConfigKeys
        merged.precision = other.precision ?? precision
        merged.tasks = other.tasks ?? tasks
        merged.passkeyDepths = other.passkeyDepths ?? passkeyDepths
        merged.passkeyTrials = other.passkeyTrials ?? passkeyTrials
        merged.passkeySeed = other.passkeySeed ?? passkeySeed
        // A tokenizer and bytes exclude each other: the later layer's choice of either replaces both.
        if other.passkeyTokenizer != nil || other.passkeyBytes != nil {
            merged.passkeyTokenizer = other.passkeyTokenizer
            merged.passkeyBytes = other.passkeyBytes
        }
        return merged
    }

    /// Passkey retrieval's settings, with the defaults where nothing was given.
    /// - Throws: `EvaluationError.invalidOptions` naming what is wrong.
    public func passkeySettings() throws(EvaluationError) -> PasskeySettings {
        let settings = PasskeySettings(
            depths: passkeyDepths ?? PasskeySettings.defaultDepths,
            trials: passkeyTrials ?? PasskeySettings.defaultTrials,
            seed: passkeySeed ?? 0, tokenizer: passkeyTokenizer, bytes: passkeyBytes ?? false)
        try settings.validate()
        return settings
    }

    /// The settings of every job a checkpoint gets, perplexity first: `tasks` (default perplexity) over
    /// `settings()`, a passkey job's with `passkeySettings()`.
    public func jobSettings() throws(EvaluationError) -> [EvaluationSettings] {
        let base = try settings()
        var jobs: [EvaluationSettings] = []
        for task in EvaluationTask.allCases where (tasks ?? [.perplexity]).contains(task) {
            switch task {
            case .perplexity: jobs.append(base)
            case .passkey: jobs.append(base.passkeyJob(try passkeySettings()))
            }
        }
        return jobs
    }

    /// The settings, with `EvaluationSettings.Defaults` where nothing was given.
    /// - Throws: `EvaluationError.invalidOptions` without data, or when the combination is invalid.
    public func settings() throws(EvaluationError) -> EvaluationSettings {
        guard let data else { throw .invalidOptions("no evaluation data: give --data FILE (or `data = \"FILE\"`)") }
        typealias Defaults = EvaluationSettings.Defaults
        var settings = EvaluationSettings(
            data: DataReference(path: data, dtype: dtype ?? Defaults.dtype), lengths: lengths ?? Defaults.lengths,
            evaluationProtocol: evaluationProtocol ?? Defaults.evaluationProtocol, budget: budget,
            offset: offset ?? Defaults.offset, bos: bos ?? Defaults.bos, bosToken: bosToken,
            perDocument: perDocument ?? Defaults.perDocument, resamples: resamples ?? Defaults.resamples,
            seed: seed ?? Defaults.seed, extensions: extensions ?? [], trainedLength: trainedLength)
        settings.allowUnknownConfigKeys = allowUnknownConfigKeys == true ? true : nil
        settings.precision = precision == .bf16 ? .bf16 : nil
        try settings.validate()
        return settings
    }
}

extension EvaluationSettings {
    /// Every default of the evaluation settings, in one place (help texts quote these).
    public enum Defaults {
        public static let dtype = TokenDType.uint16
        public static let lengths = LengthGrid.standard
        public static let evaluationProtocol = EvaluationProtocol.nonoverlapping
        public static let offset = 0
        public static let bos = BOSPlacement.none
        public static let perDocument = false
        public static let resamples = 1000
        public static let seed: UInt64 = 0
    }
}
