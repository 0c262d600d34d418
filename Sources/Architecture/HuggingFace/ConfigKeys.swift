import Foundation

/// What an importer does with each key of a `config.json`: the keys it reads, the keys it deliberately ignores
/// because they do not change what the model computes at inference, and, among the keys it does not read, those
/// known to change the model when set (refused unless allowed). Every other key is *unknown*: listed by `inspect`
/// and recorded with each result, so a surprising number can be traced to a setting nobody read.
public struct ConfigKeys: Sendable {
    /// Keys the importer reads (from the `@HuggingFaceConfig` struct's `configKeys`).
    public var read: [String]
    /// Keys the importer ignores, each with why that is safe.
    public var ignored: [String: String]
    /// Keys the importer does not read that change the model when set to anything but their neutral value.
    public var changing: [String: ModelChangingKey]
    /// Inventories of object-valued keys (`attn_config`, `rope_parameters`).
    public var nested: [String: ConfigKeys]

    public init(
        read: [String], ignored: [String: String] = [:], changing: [String: ModelChangingKey] = [:],
        nested: [String: ConfigKeys] = [:]
    ) {
        self.read = read
        self.ignored = ignored
        self.changing = changing
        self.nested = nested
    }
}

/// A key that changes the model when set: what it does, and which values leave the model as the importer builds it.
public struct ModelChangingKey: Sendable {
    /// What the key does (`soft-caps attention logits (Gemma 2)`).
    public var effect: String
    /// Whether `value` (from `JSONSerialization`) leaves the model unchanged, given the whole config object.
    public var isNeutral: @Sendable (_ value: Any, _ config: [String: Any]) -> Bool
    /// The neutral values, as the documentation states them.
    public var neutral: String

    public init(
        _ effect: String, neutral: String,
        isNeutral: @escaping @Sendable (_ value: Any, _ config: [String: Any]) -> Bool
    ) {
        self.effect = effect
        self.neutral = neutral
        self.isNeutral = isNeutral
    }

    /// Neutral when absent in effect: `null`, `false`, `0` or an empty list or object.
    public static func unset(_ effect: String) -> ModelChangingKey {
        ModelChangingKey(effect, neutral: "null, false or 0") { value, _ in ConfigValue.isUnset(value) }
    }

    /// Neutral when `null` or exactly `one` (a multiplier).
    public static func multiplier(_ effect: String, one: Double = 1) -> ModelChangingKey {
        ModelChangingKey(effect, neutral: "null or \(one.formatted())") { value, _ in
            ConfigValue.isUnset(value) || ConfigValue.number(value) == one
        }
    }
}

/// A key of a config that an importer did not read: its dotted path and value, and what it does when it is known
/// to change the model.
public struct UnreadConfigKey: Sendable, Hashable, Codable, CustomStringConvertible {
    /// `attn_logit_softcapping`, `attn_config.rope`.
    public var key: String
    /// The value as compact JSON (long values shortened).
    public var value: String
    /// What the key does to the model, when it is known to change it (`nil`: unknown effect).
    public var changesModel: String?

    public var description: String { "\(key) = \(value)" }
}

/// The keys of one config that its importer did not read.
public struct ConfigAudit: Sendable, Hashable, Codable {
    /// The config's path.
    public var path: String
    /// The family's `model_type`.
    public var modelType: String
    /// Keys neither read nor known to be harmless, in file order of their paths (sorted).
    public var unread: [UnreadConfigKey]

    /// The unread keys known to change the model.
    public var modelChanging: [UnreadConfigKey] { unread.filter { $0.changesModel != nil } }

    /// `key = value` of every unread key, as results record them.
    public var recorded: [String] { unread.map(\.description) }

    /// Refuses the config when a key it does not read is known to change the model, unless `allowed`.
    /// - Throws: `ArchitectureError.modelChangingKeys` naming every such key, its value and what it does.
    public func check(allowingUnknownKeys allowed: Bool) throws(ArchitectureError) {
        let changing = modelChanging
        guard !allowed, !changing.isEmpty else { return }
        throw .modelChangingKeys(path: path, modelType: modelType, keys: changing)
    }

    /// The warning stored with results evaluated despite model-changing keys (`nil` when there are none).
    public var warning: String? {
        let changing = modelChanging
        guard !changing.isEmpty else { return nil }
        let list = changing.map { "\($0.key) = \($0.value) (\($0.changesModel ?? ""))" }.joined(separator: "; ")
        return "config.json sets keys that change the model and were not read (allowed with "
            + "--allow-unknown-config-keys): \(list); these numbers are of the model without them"
    }
}

/// Reading values of a parsed JSON object the way the key rules need them.
enum ConfigValue {
    static func isUnset(_ value: Any) -> Bool {
        switch value {
        case is NSNull: return true
        case let number as NSNumber: return number.doubleValue == 0
        case let list as [Any]: return list.isEmpty
        case let object as [String: Any]: return object.isEmpty
        case let text as String: return text.isEmpty
        default: return false
        }
    }

    static func number(_ value: Any) -> Double? { (value as? NSNumber)?.doubleValue }

    /// Compact JSON of `value`, shortened to about 60 characters.
    static func text(_ value: Any) -> String {
        let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys])
        let text = data.flatMap { String(data: $0, encoding: .utf8) } ?? "\(value)"
        return text.count > 60 ? String(text.prefix(57)) + "…" : text
    }
}

extension ConfigKeys {
    /// The keys of `object` this inventory does not cover, with dotted paths under `prefix`.
    func unread(in object: [String: Any], root: [String: Any], prefix: String = "") -> [UnreadConfigKey] {
        var found: [UnreadConfigKey] = []
        let readSet = Set(read)
        for key in object.keys.sorted() {
            let value = object[key] ?? NSNull()
            if let inner = nested[key] {
                if let innerObject = value as? [String: Any] {
                    found += inner.unread(in: innerObject, root: root, prefix: prefix + key + ".")
                }
                continue
            }
            if readSet.contains(key) || ignored[key] != nil { continue }
            if let rule = changing[key] {
                if rule.isNeutral(value, root) { continue }
                found.append(
                    UnreadConfigKey(key: prefix + key, value: ConfigValue.text(value), changesModel: rule.effect))
                continue
            }
            found.append(UnreadConfigKey(key: prefix + key, value: ConfigValue.text(value), changesModel: nil))
        }
        return found
    }

    /// This inventory with the keys every family shares: the ones no family's computation depends on and the
    /// model-changing keys of other families (`HuggingFace.commonIgnoredKeys`, `HuggingFace.commonChangingKeys`),
    /// less any this family reads; `changing: false` adds only the ignored ones (for nested objects that
    /// `transformers` saves as configs of their own, such as MPT's `attn_config`).
    func withCommonKeys(changing: Bool = true) -> ConfigKeys {
        var merged = self
        let readSet = Set(read)
        for (key, why) in HuggingFace.commonIgnoredKeys where !readSet.contains(key) && merged.ignored[key] == nil {
            merged.ignored[key] = why
        }
        guard changing else { return merged }
        for (key, rule) in HuggingFace.commonChangingKeys where !readSet.contains(key) && merged.changing[key] == nil {
            merged.changing[key] = rule
        }
        return merged
    }
}

extension HuggingFace {
    /// The keys of the config at `path` (bytes `data`, family `modelType`) that its importer does not read.
    public static func audit(configJSON data: Data, path: String, modelType: String) -> ConfigAudit {
        guard let keys = configKeys[modelType],
            let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        else { return ConfigAudit(path: path, modelType: modelType, unread: []) }
        return ConfigAudit(path: path, modelType: modelType, unread: keys.unread(in: object, root: object))
    }

    /// Keys no family's computation depends on: bookkeeping, token ids (the tokenizer's business), training-only
    /// settings (dropout, initialisation) and text-generation defaults.
    public static let commonIgnoredKeys: [String: String] = {
        var keys: [String: String] = [:]
        let groups: [(String, [String])] = [
            ("the family is chosen by model_type", ["architectures", "auto_map", "model_type"]),
            (
                "bookkeeping of the saving library",
                [
                    "transformers_version", "_name_or_path", "_commit_hash", "torch_dtype", "dtype", "use_cache",
                    "_attn_implementation", "attn_implementation", "torchscript", "return_dict", "use_return_dict",
                    "output_attentions", "output_hidden_states", "init_device", "verbose", "use_bfloat16",
                    "tf_legacy_loss", "gradient_checkpointing", "chunk_size_feed_forward", "pruned_heads",
                    "is_llama_config",
                ]
            ),
            (
                "token ids belong to the tokenizer; scoring reads the tokens given",
                [
                    "bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id", "sep_token_id",
                    "decoder_start_token_id", "tokenizer_class", "tokenizer_name",
                ]
            ),
            (
                "training only: dropout is off and initialisation is overwritten by the checkpoint",
                [
                    "dropout", "attention_dropout", "hidden_dropout", "activation_dropout", "classifier_dropout",
                    "embedding_dropout", "resid_pdrop", "embd_pdrop", "emb_pdrop", "attn_pdrop", "layerdrop",
                    "attention_probs_dropout_prob", "hidden_dropout_prob", "initializer_range", "init_std",
                    "initializer_factor", "init_config", "embedding_fraction",
                ]
            ),
            (
                "fine-tuning heads and labels, not the language model",
                [
                    "id2label", "label2id", "num_labels", "problem_type", "finetuning_task", "task_specific_params",
                    "prefix", "summary_type", "summary_use_proj", "summary_activation", "summary_proj_to_labels",
                    "summary_first_dropout", "is_decoder", "is_encoder_decoder", "tie_encoder_decoder",
                    "cross_attention_hidden_size",
                ]
            ),
            (
                "text-generation defaults; scoring does not generate",
                [
                    "max_length", "min_length", "max_new_tokens", "do_sample", "early_stopping", "num_beams",
                    "num_beam_groups", "diversity_penalty", "temperature", "top_k", "top_p", "typical_p",
                    "repetition_penalty", "length_penalty", "no_repeat_ngram_size", "encoder_no_repeat_ngram_size",
                    "bad_words_ids", "num_return_sequences", "output_scores", "return_dict_in_generate",
                    "forced_bos_token_id", "forced_eos_token_id", "remove_invalid_values",
                    "exponential_decay_length_penalty", "suppress_tokens", "begin_suppress_tokens",
                ]
            ),
        ]
        for (why, names) in groups { for name in names { keys[name] = why } }
        return keys
    }()

    /// Keys other families use that change the model when set; on a family that does not read them they are
    /// refused unless `--allow-unknown-config-keys` is given.
    public static let commonChangingKeys: [String: ModelChangingKey] = [
        "attn_logit_softcapping": .unset("soft-caps attention logits (Gemma 2)"),
        "final_logit_softcapping": .unset("soft-caps the output logits (Gemma 2)"),
        "sliding_window": ModelChangingKey(
            "limits attention to a sliding window (Mistral, Qwen 2)",
            neutral: "null, or any value with use_sliding_window false"
        ) { value, config in
            ConfigValue.isUnset(value) || (config["use_sliding_window"] as? NSNumber)?.boolValue == false
        },
        "use_sliding_window": .unset("turns on sliding-window attention (Qwen 2)"),
        "layer_types": ModelChangingKey(
            "gives layers different attention kinds (sliding, chunked)", neutral: "every entry \"full_attention\""
        ) { value, _ in
            ConfigValue.isUnset(value)
                || ((value as? [Any])?.allSatisfy { ($0 as? String) == "full_attention" } ?? false)
        },
        "attention_bias": .unset("adds biases to the attention projections"),
        "mlp_bias": .unset("adds biases to the feed-forward projections"),
        "qkv_bias": .unset("adds biases to the query, key and value projections"),
        "bias": .unset("adds biases to the linear layers (Falcon)"),
        "use_bias": .unset("adds biases to the linear layers"),
        "qk_layernorm": .unset("normalises queries and keys"),
        "qk_norm": .unset("normalises queries and keys"),
        "use_qk_norm": .unset("normalises queries and keys"),
        "clip_qkv": .unset("clips queries, keys and values (OLMo)"),
        "quantization_config": .unset("the weights are quantized (GPTQ, AWQ, bitsandbytes)"),
        "num_experts": .multiplier("a mixture of experts", one: 1),
        "num_local_experts": .multiplier("a mixture of experts", one: 1),
        "n_routed_experts": .multiplier("a mixture of experts", one: 1),
        "embedding_multiplier": .multiplier("scales the embeddings (Granite)"),
        "residual_multiplier": .multiplier("scales each residual branch (Granite)"),
        "logits_scaling": .multiplier("divides the logits (Granite)"),
        "attention_multiplier": .unset("replaces the attention scale (Granite)"),
        "query_pre_attn_scalar": .unset("replaces the attention scale (Gemma)"),
        "logit_scale": .multiplier("scales the logits (Cohere)"),
        "no_rope_layers": .unset("leaves some layers without rotary positions"),
        "rope_interleaved": .unset("rotates interleaved pairs instead of halves (nanotron)"),
        "alibi": .unset("replaces the positions with ALiBi (Falcon)"),
        "parallel_attn": .unset("runs attention and feed-forward in parallel (Falcon)"),
        "new_decoder_architecture": .unset("Falcon's two-norm decoder"),
        "rope_scaling": .unset("asks for a rotary extension, but this family has no rotary positions"),
        "rope_parameters": ModelChangingKey(
            "asks for rotary positions, but this family has none", neutral: "null"
        ) { value, _ in value is NSNull },
    ]
}
