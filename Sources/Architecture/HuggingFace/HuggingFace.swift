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
        "mistral": { json, path throws(ArchitectureError) in
            try .mistral(try decode(MistralConfig.self, json, path), json: json, path: path)
        },
        "qwen2": { json, path throws(ArchitectureError) in
            try .qwen2(try decode(Qwen2Config.self, json, path), path: path)
        },
        "qwen3": { json, path throws(ArchitectureError) in
            try .qwen3(try decode(Qwen3Config.self, json, path), path: path)
        },
        "olmo2": { json, path throws(ArchitectureError) in
            try .olmo2(try decode(Olmo2Config.self, json, path), path: path)
        },
        "phi3": { json, path throws(ArchitectureError) in try .phi3(try decode(Phi3Config.self, json, path), path: path)
        },
        "gemma": { json, path throws(ArchitectureError) in
            try .gemma(try decode(GemmaConfig.self, json, path), path: path)
        },
        "gemma2": { json, path throws(ArchitectureError) in
            try .gemma2(try decode(Gemma2Config.self, json, path), json: json, path: path)
        },
    ]

    /// The supported `model_type` values, sorted.
    public static var supportedModelTypes: [String] { importers.keys.sorted() }

    /// Imports the `config.json` at `url` (a file, or a folder holding `config.json`).
    /// - Parameter allowingUnknownKeys: accept keys the importer does not read that are known to change the model
    ///   (`--allow-unknown-config-keys`); otherwise they are refused.
    /// - Throws: `ArchitectureError` naming the file and key that is missing, malformed, unsupported or not read.
    public static func architecture(
        configAt url: URL, allowingUnknownKeys: Bool = false
    ) throws(ArchitectureError) -> Architecture {
        try imported(configAt: url, allowingUnknownKeys: allowingUnknownKeys).architecture
    }

    /// Imports a `config.json` from its bytes; the architecture is validated before it is returned.
    public static func architecture(
        configJSON data: Data, path: String, allowingUnknownKeys: Bool = false
    ) throws(ArchitectureError) -> Architecture {
        try imported(configJSON: data, path: path, allowingUnknownKeys: allowingUnknownKeys).architecture
    }

    /// A config's architecture and the keys its importer did not read.
    public struct ImportedConfig: Sendable {
        public var architecture: Architecture
        public var audit: ConfigAudit
    }

    /// Imports the `config.json` at `url` (a file, or a folder holding `config.json`), with the keys not read.
    public static func imported(
        configAt url: URL, allowingUnknownKeys: Bool = false
    ) throws(ArchitectureError) -> ImportedConfig {
        let (data, path) = try readConfig(at: url)
        return try imported(configJSON: data, path: path, allowingUnknownKeys: allowingUnknownKeys)
    }

    /// Imports a `config.json` from its bytes, with the keys not read; the architecture is validated.
    /// - Throws: `ArchitectureError.modelChangingKeys` when a key the importer does not read is known to change the
    ///   model and `allowingUnknownKeys` is false.
    public static func imported(
        configJSON data: Data, path: String, allowingUnknownKeys: Bool = false
    ) throws(ArchitectureError) -> ImportedConfig {
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
        let audit = audit(configJSON: data, path: path, modelType: modelType)
        try audit.check(allowingUnknownKeys: allowingUnknownKeys)
        return ImportedConfig(architecture: architecture, audit: audit)
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
        "mistral": [".self_attn.rotary_emb.inv_freq"],
        "qwen2": [".self_attn.rotary_emb.inv_freq"],
        "qwen3": [".self_attn.rotary_emb.inv_freq"],
        "olmo2": [".self_attn.rotary_emb.inv_freq"],
        "phi3": [".self_attn.rotary_emb.inv_freq"],
        "gemma": [".self_attn.rotary_emb.inv_freq"],
        "gemma2": [".self_attn.rotary_emb.inv_freq"],
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

extension HuggingFace {
    /// What each family's importer reads, ignores and refuses (`ConfigKeys`), by `model_type`.
    public static let configKeys: [String: ConfigKeys] = {
        let rope = ConfigKeys(read: RopeParameters.configKeys)
        let precision = "changes only the floating-point precision of a step; Extrapolate computes in fp32"
        let tensorParallel = "a training-time split or fusion of the same arithmetic (Megatron); the model is the same"
        let families: [String: ConfigKeys] = [
            "gpt2": ConfigKeys(
                read: GPT2Config.configKeys,
                ignored: [
                    "reorder_and_upcast_attn": precision,
                    "n_ctx": "an old copy of n_positions that transformers does not read",
                ]),
            "opt": ConfigKeys(read: OPTConfig.configKeys),
            "bloom": ConfigKeys(
                read: BloomConfig.configKeys,
                ignored: [
                    "pretraining_tp": tensorParallel, "slow_but_exact": tensorParallel,
                    "attention_softmax_in_fp32": precision, "masked_softmax_fusion": tensorParallel,
                    "bias_dropout_fusion": tensorParallel, "skip_bias_add": tensorParallel,
                    "skip_bias_add_qkv": tensorParallel, "offset_alibi": "not read by transformers' BLOOM",
                ],
                changing: [
                    "n_inner": .unset("a feed-forward width other than 4 × hidden_size (transformers ignores it)")
                ]),
            "mpt": ConfigKeys(
                read: MPTConfig.configKeys,
                ignored: [
                    "learned_pos_emb":
                        "transformers' MPT has no learned position table; a checkpoint holding one fails to bind",
                    "fc_type": "the linear layer's implementation, not its arithmetic",
                ],
                changing: [
                    "no_bias": ModelChangingKey(
                        "false adds biases to every linear layer (MosaicML's code; transformers' MPT never has them)",
                        neutral: "true"
                    ) { value, _ in (value as? NSNumber)?.boolValue ?? true },
                    "norm_type": ModelChangingKey(
                        "a normalisation other than LayerNorm", neutral: "\"low_precision_layernorm\" or \"layernorm\""
                    ) { value, _ in ["low_precision_layernorm", "layernorm"].contains(value as? String ?? "") },
                    "ffn_config": ModelChangingKey(
                        "a feed-forward other than MPT's MLP", neutral: "ffn_type \"mptmlp\""
                    ) {
                        value, _ in
                        guard let object = value as? [String: Any] else { return ConfigValue.isUnset(value) }
                        return (object["ffn_type"] as? String ?? "mptmlp") == "mptmlp" && object["ffn_act_fn"] == nil
                    },
                ],
                nested: [
                    "attn_config": ConfigKeys(
                        read: MPTAttentionConfig.configKeys,
                        ignored: [
                            "attn_impl": "which kernel computes attention (torch, flash, triton), not what it computes",
                            "attn_pdrop": "training only: dropout is off",
                            "attn_uses_sequence_id":
                                "masks across packed documents only when sequence ids are passed; scoring passes none",
                        ],
                        changing: [
                            "rope": .unset("rotary positions (llm-foundry), which transformers' MPT does not build"),
                            "sliding_window_size": ModelChangingKey(
                                "limits attention to a sliding window", neutral: "-1 or null"
                            ) { value, _ in ConfigValue.isUnset(value) || ConfigValue.number(value) == -1 },
                        ]
                    ).withCommonKeys(changing: false)  // transformers saves it as a config of its own
                ]),
            "gpt_neox": ConfigKeys(
                read: GPTNeoXConfig.configKeys, nested: ["rope_parameters": rope, "rope_scaling": rope]),
            "llama": ConfigKeys(
                read: LlamaConfig.configKeys,
                ignored: [
                    "pretraining_tp":
                        "splits the projections into slices (transformers' tensor-parallel emulation); the same model"
                ],
                nested: ["rope_parameters": rope, "rope_scaling": rope]),
            "mistral": ConfigKeys(
                read: MistralConfig.configKeys, nested: ["rope_parameters": rope, "rope_scaling": rope]),
            "qwen2": ConfigKeys(
                read: Qwen2Config.configKeys, nested: ["rope_parameters": rope, "rope_scaling": rope]),
            "qwen3": ConfigKeys(
                read: Qwen3Config.configKeys, nested: ["rope_parameters": rope, "rope_scaling": rope]),
            "olmo2": ConfigKeys(
                read: Olmo2Config.configKeys, nested: ["rope_parameters": rope, "rope_scaling": rope]),
            "gemma": ConfigKeys(
                read: GemmaConfig.configKeys,
                ignored: ["hidden_activation": "transformers 5 reads hidden_act"],
                changing: [
                    "use_bidirectional_attention": .unset("attention in both directions (EmbeddingGemma), not causal")
                ],
                nested: ["rope_parameters": rope, "rope_scaling": rope]),
            "gemma2": ConfigKeys(
                read: Gemma2Config.configKeys,
                ignored: [
                    "hidden_act": "transformers reads hidden_activation",
                    "cache_implementation": "how generation caches keys, not what a pass computes",
                ],
                changing: [
                    "use_bidirectional_attention": .unset("attention in both directions (EmbeddingGemma), not causal")
                ],
                nested: ["rope_parameters": rope, "rope_scaling": rope]),
            "phi3": ConfigKeys(
                read: Phi3Config.configKeys,
                ignored: [
                    "resid_pdrop": "training only: dropout is off", "embd_pdrop": "training only: dropout is off",
                ],
                nested: ["rope_parameters": rope, "rope_scaling": rope]),
        ]
        return families.mapValues { $0.withCommonKeys() }
    }()
}
