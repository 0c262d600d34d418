import Foundation

/// Imports Hugging Face `config.json` files into `Architecture` values with the exact tensor names that
/// family's safetensors checkpoints use. One importer per `model_type`.
public enum HuggingFace {
    /// An importer: the config's bytes and path (for messages) to an architecture.
    public typealias Importer = @Sendable (_ json: Data, _ path: String) throws(ArchitectureError) -> Architecture

    /// Importers by `model_type`.
    public static let importers: [String: Importer] = [
        "gpt2": { json, path throws(ArchitectureError) in try .gpt2(try decode(GPT2Config.self, json, path), path: path)
        },
        "opt": { json, path throws(ArchitectureError) in try .opt(try decode(OPTConfig.self, json, path), path: path) },
        "bloom": { json, path throws(ArchitectureError) in
            try .bloom(try decode(BloomConfig.self, json, path), path: path)
        },
        "mpt": { json, path throws(ArchitectureError) in try .mpt(try decode(MPTConfig.self, json, path), path: path) },
        "gpt_neox": { json, path throws(ArchitectureError) in
            try .gptNeoX(try decode(GPTNeoXConfig.self, json, path), path: path)
        },
        "llama": { json, path throws(ArchitectureError) in
            try .llama(try decode(LlamaConfig.self, json, path), path: path)
        },
    ]

    /// The supported `model_type` values, sorted.
    public static var supportedModelTypes: [String] { importers.keys.sorted() }

    /// Imports the `config.json` at `url` (a file, or a folder holding `config.json`).
    /// - Throws: `ArchitectureError` naming the file and key that is missing, malformed or unsupported.
    public static func architecture(configAt url: URL) throws(ArchitectureError) -> Architecture {
        let (data, path) = try readConfig(at: url)
        return try architecture(configJSON: data, path: path)
    }

    /// The bytes and path of the `config.json` at `url` (a file, or a folder holding `config.json`).
    static func readConfig(at url: URL) throws(ArchitectureError) -> (Data, path: String) {
        var file = url
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue {
            file = url.appendingPathComponent("config.json")
        }
        do { return (try Data(contentsOf: file), file.path) } catch {
            throw .unreadable(path: file.path, reason: (error as NSError).localizedDescription)
        }
    }

    /// Imports a `config.json` from its bytes; the architecture is validated before it is returned.
    public static func architecture(configJSON data: Data, path: String) throws(ArchitectureError) -> Architecture {
        let header = try decode(ModelTypeHeader.self, data, path)
        guard let modelType = header.modelType else {
            throw .badConfig(
                path: path, key: "model_type", reason: "missing; this does not look like a Hugging Face config.json")
        }
        guard let importer = importers[modelType] else {
            throw .unknownModelType(path: path, modelType: modelType, supported: supportedModelTypes)
        }
        let architecture = try importer(data, path)
        try architecture.validate(readFrom: path)
        return architecture
    }

    /// Decodes a config struct, turning decoding failures into `badConfig` naming the key.
    static func decode<T: Decodable>(_ type: T.Type, _ data: Data, _ path: String) throws(ArchitectureError) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            throw .badConfig(path: path, key: key(of: error), reason: DecodingFailure.describe(error, data: data))
        } catch {
            throw .unreadable(path: path, reason: "\(error)")
        }
    }

    private static func key(of error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, let context):
            return (context.codingPath + [key]).map(\.stringValue).joined(separator: ".")
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? "(file)" : path
        @unknown default:
            return "(unknown)"
        }
    }

    /// The activation a family names in `activation_function` / `hidden_act`.
    /// The activation a config names (Hugging Face `hidden_act`, fairseq `activation_fn`).
    public static func activation(_ name: String, key: String, path: String) throws(ArchitectureError) -> Activation {
        switch name {
        case "gelu": return .gelu
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu_accurate": return .geluTanh
        case "relu": return .relu
        case "silu", "swish": return .silu
        default:
            throw .unsupportedOption(
                path: path, key: key, value: name,
                reason: "supported activations: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu, silu")
        }
    }
}

@HuggingFaceConfig
struct ModelTypeHeader {
    var modelType: String?
}

extension HuggingFace {
    /// Tensor-name suffixes each family stores as buffers rather than weights (causal-mask tables, cached
    /// rotary frequencies). Older checkpoints carry them; the engine drops them instead of calling them unused.
    public static let bufferSuffixes: [String: [String]] = [
        "gpt2": [".attn.bias", ".attn.masked_bias"],
        "gpt_neox": [".attention.bias", ".attention.masked_bias", ".attention.rotary_emb.inv_freq"],
        "llama": [".self_attn.rotary_emb.inv_freq"],
        "opt": [],
        "bloom": [],
        "mpt": [],
    ]

    /// The `model_type` of the `config.json` at `url` (a file or its folder).
    public static func modelType(configAt url: URL) throws(ArchitectureError) -> String {
        let (data, path) = try readConfig(at: url)
        guard let modelType = try decode(ModelTypeHeader.self, data, path).modelType else {
            throw .badConfig(path: path, key: "model_type", reason: "missing")
        }
        return modelType
    }
}
