import Architecture
import Engine
import Foundation
import TokenData

/// Everything that decides an evaluation besides the checkpoint: which data, which lengths, how windows are cut,
/// how intervals are drawn and which rotary extensions run as extra series.
///
/// `sweep`, `compare` and the daemon build one of these; its `scoringHash` (what decides the numbers at a length)
/// keys stored results, so two settings that score the same tokens the same way share results.
public struct EvaluationSettings: Sendable, Hashable, Codable {
    /// The evaluation data.
    public var data: DataReference
    /// The window lengths, possibly relative to each checkpoint's trained length.
    public var lengths: LengthGrid
    /// How windows are cut and which predictions count.
    public var evaluationProtocol: EvaluationProtocol
    /// Targets scored at every length; `nil`: enough for 20 windows of the longest length (`targets(longest:)`), at
    /// most what the data holds.
    public var budget: Int?
    /// First stream token of the scored span.
    public var offset: Int
    /// Where a BOS token goes, and its id.
    public var bos: BOSPlacement
    public var bosToken: Int32?
    /// Cut windows inside each document instead of across the stream.
    public var perDocument: Bool
    /// Bootstrap resamples (0: no intervals) and their seed.
    public var resamples: Int
    public var seed: UInt64
    /// Rotary extensions evaluated as extra series (factor = length / trained length).
    public var extensions: [RotaryExtension]
    /// The trained length L the user declares (`--trained-length`, `trained-length = N`), over what the checkpoint
    /// or its config says; multiples like 4x are of this. `nil`: the checkpoint's own (`TrainedLength`).
    public var trainedLength: Int?
    /// Evaluate a checkpoint whose config.json sets keys that change the model but are not read
    /// (`--allow-unknown-config-keys`); each result then carries a warning. `nil` (not `false`) when off, so settings
    /// stored before it existed keep their hash.
    public var allowUnknownConfigKeys: Bool?
    /// Set for a passkey job: the settings of passkey retrieval, run at `lengths` with `extensions` (the data and
    /// scoring fields then say which perplexity settings it was configured beside). `nil` for perplexity, so
    /// settings stored before passkey existed keep their hash.
    public var passkey: PasskeySettings?
    /// The arithmetic of the products (`--precision`, `precision = "bf16"`): `nil` for float32, so settings stored
    /// before it existed keep their hash. Part of `scoringHash`: a bf16 result never answers a float32 query.
    public var precision: Precision?

    enum CodingKeys: String, CodingKey {
        case data, lengths, evaluationProtocol = "protocol", budget, offset, bos, bosToken, perDocument, resamples, seed
        case extensions, trainedLength, allowUnknownConfigKeys, passkey, precision
    }

    /// `precision`, float32 when unset.
    public var computedPrecision: Precision { precision ?? .float32 }

    /// What these settings measure.
    public var task: EvaluationTask { passkey == nil ? .perplexity : .passkey }

    /// These settings as a passkey job's: the same lengths, extensions and trained length, with `passkey`.
    public func passkeyJob(_ passkey: PasskeySettings) -> EvaluationSettings {
        var settings = self
        settings.passkey = passkey
        return settings
    }

    public init(
        data: DataReference, lengths: LengthGrid = Defaults.lengths,
        evaluationProtocol: EvaluationProtocol = Defaults.evaluationProtocol, budget: Int? = nil,
        offset: Int = Defaults.offset, bos: BOSPlacement = Defaults.bos, bosToken: Int32? = nil,
        perDocument: Bool = Defaults.perDocument, resamples: Int = Defaults.resamples, seed: UInt64 = Defaults.seed,
        extensions: [RotaryExtension] = [], trainedLength: Int? = nil
    ) {
        self.data = data
        self.lengths = lengths
        self.evaluationProtocol = evaluationProtocol
        self.budget = budget
        self.offset = offset
        self.bos = bos
        self.bosToken = bosToken
        self.perDocument = perDocument
        self.resamples = resamples
        self.seed = seed
        self.extensions = extensions
        self.trainedLength = trainedLength
    }

    /// Checks the combination once, before any model is loaded.
    /// - Throws: `EvaluationError.invalidOptions` naming the option.
    public func validate() throws(EvaluationError) {
        if bos != .none, bosToken == nil { throw .invalidOptions("--bos \(bos.rawValue) needs --bos-token") }
        if let budget, budget < 1 { throw .invalidOptions("--budget must be at least 1") }
        if offset < 0 { throw .invalidOptions("--offset must not be negative") }
        if resamples < 0 { throw .invalidOptions("--bootstrap must not be negative") }
        if let trainedLength, trainedLength < 2 { throw .invalidOptions("--trained-length must be at least 2") }
        try passkey?.validate()
        if let reason = precision?.unavailableReason { throw .invalidOptions(reason) }
    }

    /// Window options at `length`.
    public func windowOptions(length: Int) -> WindowOptions {
        WindowOptions(
            length: length, protocolKind: evaluationProtocol, bos: bos, bosToken: bosToken, perDocument: perDocument)
    }

    /// Targets scored at every length when the longest window is `longest` tokens.
    /// Without a budget: enough targets for `Bootstrap.reliableUnits` (20) windows of the longest length, so its
    /// interval rests on enough windows (each scores `longest` targets nonoverlapping, the second half of it under
    /// last-half, `S` after a first window of `longest` under sliding:S). `EvaluationData` caps it at the data.
    public func targets(longest: Int) -> Int {
        if let budget { return budget }
        let windows = Bootstrap.reliableUnits
        switch evaluationProtocol {
        case .nonoverlapping: return windows * longest
        case .lastHalf: return windows * (longest - longest / 2)
        case .sliding(let stride): return longest + (windows - 1) * min(max(stride, 1), longest)
        }
    }

    /// SHA-256 of the canonical JSON of every field: two equal settings, one hash.
    public var contentHash: String { Self.hash(of: self) }

    /// SHA-256 of what decides the numbers at one length: the data's content (not its path), protocol, budget,
    /// offset, BOS, per-document cutting and a precision other than float32. Lengths, extensions and the bootstrap are not part of it: a result
    /// at length L is the same whichever other lengths, series or intervals were asked for.
    public func scoringHash(targets: Int) -> String {
        struct Scoring: Encodable {
            var data: String, evaluationProtocol: String, targets: Int, offset: Int, bos: BOSPlacement, bosToken: Int32?
            var perDocument: Bool
            var precision: Precision?
        }
        return Self.hash(
            of: Scoring(
                data: data.identity, evaluationProtocol: evaluationProtocol.description, targets: targets,
                offset: offset, bos: bos, bosToken: bosToken, perDocument: perDocument,
                precision: precision == .bf16 ? .bf16 : nil))
    }

    static func hash(of value: some Encodable) -> String {
        let bytes = Architecture.hashedBytes(of: value)
        return "sha256:" + SHA256.hex(SHA256.digest(bytes))
    }
}

/// Where the evaluation tokens come from.
public struct DataReference: Sendable, Hashable, Codable {
    /// A `.tokens.zst` dataset, or a raw little-endian token file.
    public var path: String
    /// Width of a raw file (a `.tokens.zst` file says its own).
    public var dtype: TokenDType
    /// Content checksum (`xxh64:…`), filled in when the data is read; identifies the data wherever it lives.
    public var checksum: String?

    public init(path: String, dtype: TokenDType = .uint16, checksum: String? = nil) {
        self.path = path
        self.dtype = dtype
        self.checksum = checksum
    }

    /// The checksum when known, else the path.
    public var identity: String { checksum ?? path }
}

/// A rotary extension a sweep can add as a series: the same weights with inference-time scaling, factor =
/// window length / trained length.
public enum RotaryExtension: String, Sendable, Hashable, Codable, CaseIterable {
    case linear, ntk, dynamic, yarn, llama3

    /// The scaling at `factor` (at least 1) for a model trained at `trainedLength`.
    public func scaling(factor: Double, trainedLength: Int) -> RotaryScaling {
        let s = max(factor, 1)
        switch self {
        case .linear: return .linear(factor: s)
        case .ntk: return .ntk(factor: s)
        case .dynamic: return .dynamic(factor: s, originalLength: trainedLength)
        case .yarn: return .yarn(YaRN(factor: s, originalLength: trainedLength))
        case .llama3: return .llama3(Llama3Scaling(factor: s, originalLength: trainedLength))
        }
    }
}
