import Foundation

/// The trained length L that multiples like 4x are taken of, and where it came from: a wrong L makes every multiple
/// wrong, so results, `inspect` and the page say which source gave it.
public struct TrainedLength: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Where L was read.
    public enum Source: String, Sendable, Hashable, Codable {
        /// `--trained-length` or a configuration file's `trained-length`.
        case configured
        /// Recorded by the trainer inside the checkpoint (safetensors metadata, nanoGPT's `model_args`, fairseq's
        /// `tokens_per_sample`).
        case checkpointMetadata = "checkpoint metadata"
        /// The architecture JSON or `config.json` given with `--architecture`.
        case architectureFile = "architecture file"
        /// A key of the checkpoint's `config.json` (its maximum positions, which may exceed what it was trained on).
        case config
        /// Nothing recorded it: the family's default. Give `--trained-length` if the run used another.
        case assumedDefault = "assumed default"
    }

    /// L, in tokens.
    public var tokens: Int
    public var source: Source
    /// The key, flag or file that said it (`max_position_embeddings`, `model_args.block_size`, `--trained-length`).
    public var key: String

    public init(tokens: Int, source: Source, key: String) {
        self.tokens = tokens
        self.source = source
        self.key = key
    }

    /// `64 (checkpoint metadata: extrapolate.trainedLength)`.
    public var description: String { "\(tokens) (\(provenance))" }

    /// `checkpoint metadata: extrapolate.trainedLength`; `assumed default for bloom` says what to do.
    public var provenance: String { key.isEmpty ? source.rawValue : "\(source.rawValue): \(key)" }

    /// The safetensors metadata key a trainer records L under (Datasets/demo/train.py, `extrapolate train`).
    public static let metadataKey = "extrapolate.trainedLength"
}

extension HuggingFace {
    /// The `config.json` keys each family's importer reads its trained length from, in the order it reads them;
    /// none of them present means the importer assumed its default.
    static let trainedLengthKeys: [String: [String]] = [
        "gpt2": ["n_positions", "max_position_embeddings"],
        "bloom": ["seq_length", "max_position_embeddings"],
        "mpt": ["max_seq_len"],
    ]

    /// Where the trained length of the architecture imported from the `config.json` at `url` came from; `nil` when
    /// the file is not a Hugging Face config (an architecture JSON).
    public static func trainedLength(of architecture: Architecture, configAt url: URL) -> TrainedLength? {
        // Unreadable or not a config: the caller's architecture came from elsewhere and says its own length.
        guard let (data, _) = try? readConfig(at: url),
            (try? decode(ModelTypeHeader.self, data, url.path))?.modelType != nil
        else { return nil }
        return trainedLength(of: architecture, configJSON: data)
    }

    /// Where the trained length of an imported `config.json` came from: the first of the family's keys the JSON
    /// has, else the importer's default.
    public static func trainedLength(of architecture: Architecture, configJSON data: Data) -> TrainedLength {
        // The importer has already decoded these bytes as a JSON object; anything else reads as no keys at all.
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        let modelType = object["model_type"] as? String ?? ""
        let keys = trainedLengthKeys[modelType] ?? ["max_position_embeddings"]
        if let key = keys.first(where: { object[$0] is NSNumber }) {
            return TrainedLength(tokens: architecture.trainedLength, source: .config, key: key)
        }
        return TrainedLength(
            tokens: architecture.trainedLength, source: .assumedDefault,
            key: "\(modelType.isEmpty ? "this family" : modelType) without \(keys.joined(separator: " or "))")
    }
}
