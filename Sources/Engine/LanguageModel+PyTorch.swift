import Architecture
import Checkpoints
import Foundation

// Architectures of PyTorch checkpoints that carry their own configuration: nanoGPT's `model_args`, fairseq's
// `cfg.model` or `args`.

extension LanguageModel {
    /// nanoGPT's `ckpt.pt`: its `model_args` (n_layer, n_head, n_embd, block_size, vocab_size, bias) say the
    /// architecture; `lm_head.weight` is wte's tied copy and `.attn.bias` the causal-mask buffer of non-flash
    /// attention.
    static func nanoGPT(_ checkpoint: Checkpoint) throws(ArchitectureError) -> CheckpointArchitecture? {
        guard let arguments = checkpoint.extras["model_args"] else { return nil }
        func integer(_ key: String) throws(ArchitectureError) -> Int {
            guard let value = arguments[key]?.int, value > 0 else {
                throw .unsupportedOption(
                    path: checkpoint.path, key: "model_args.\(key)",
                    value: "\(arguments[key].map { "\($0)" } ?? "missing")",
                    reason: "nanoGPT's model_args need a positive \(key)")
            }
            return value
        }
        let architecture = Architecture.nanoGPT(
            layers: try integer("n_layer"), heads: try integer("n_head"), width: try integer("n_embd"),
            blockSize: try integer("block_size"), vocabulary: try integer("vocab_size"),
            bias: arguments["bias"]?.bool ?? true)
        try architecture.validate(readFrom: checkpoint.path)
        return CheckpointArchitecture(
            architecture: architecture, ignoredSuffixes: ["lm_head.weight", ".attn.bias"],
            notes: ["architecture from nanoGPT's model_args"],
            trainedLength: TrainedLength(
                tokens: architecture.trainedLength, source: .checkpointMetadata, key: "model_args.block_size"))
    }

    /// fairseq's `transformer_lm` (and the ALiBi fork's): the model configuration from `cfg.model` (fairseq ≥ 0.10,
    /// a plain dict or an omegaconf container) or `args` (older, an `argparse.Namespace`), the vocabulary from
    /// `decoder.embed_tokens.weight`. Adaptive input and softmax (the WikiText-103 models) are refused with a
    /// clear error, not misread.
    static func fairseq(_ checkpoint: Checkpoint) throws(ArchitectureError) -> CheckpointArchitecture? {
        let extras = checkpoint.extras
        guard checkpoint.names.contains("decoder.embed_tokens.weight"),
            let model = extras["cfg"]?["model"] ?? extras["args"], case .dict = model
        else { return nil }
        let path = checkpoint.path
        let source = extras["cfg"]?["model"] != nil ? "cfg.model" : "args"
        func integer(_ key: String, _ fallback: Int) throws(ArchitectureError) -> Int {
            guard let value = model[key] else { return fallback }
            guard let number = value.int, number > 0 else {
                throw .badConfig(
                    path: path, key: "\(source).\(key)", reason: "expected a positive integer, found \(value)")
            }
            return number
        }
        func flag(_ key: String) -> Bool { model[key]?.bool ?? false }
        for key in [
            "adaptive_input", "adaptive_softmax_cutoff", "layernorm_embedding", "decoder_layerdrop", "quant_noise_pq",
        ] {
            let value = model[key]
            let active: Bool =
                switch value {
                case .bool(let on)?: on
                case .int(let n)?: n != 0
                case .double(let x)?: x != 0
                case .string(let text)?: !text.isEmpty && text != "None"
                default: false
                }
            if active {
                throw .unsupportedOption(
                    path: path, key: "\(source).\(key)", value: "\(value!)",
                    reason: "not representable yet (fairseq's adaptive input/softmax and embedding layer norm)")
            }
        }
        guard let vocabulary = checkpoint.info("decoder.embed_tokens.weight")?.shape.first else { return nil }
        let width = try integer("decoder_embed_dim", 512)
        let alibi = flag("alibi") || checkpoint.names.contains { $0.hasSuffix(".alibi") || $0 == "decoder.alibi" }
        let positions: FairseqLanguageModelOptions.Positions =
            flag("no_token_positional_embeddings") || alibi
            ? .none : flag("decoder_learned_pos") ? .learned : .sinusoidal
        let activation = try HuggingFace.activation(
            model["activation_fn"]?.string ?? "relu", key: "\(source).activation_fn", path: path)
        let trained = try integer("tokens_per_sample", 1024)
        let options = FairseqLanguageModelOptions(
            vocabulary: vocabulary, width: width, layers: try integer("decoder_layers", 6),
            heads: try integer("decoder_attention_heads", 8), feedForward: try integer("decoder_ffn_embed_dim", 2048),
            normalizeBefore: flag("decoder_normalize_before"), positions: positions, alibi: alibi,
            trainedLength: trained, maximumPositions: try integer("max_target_positions", trained),
            scaleEmbedding: !flag("no_scale_embedding"), activation: activation,
            tied: flag("share_decoder_input_output_embed"))
        let architecture = Architecture.fairseqLM(options)
        try architecture.validate(readFrom: path)
        var ignored = ["decoder.version", "embed_positions._float_tensor", ".alibi"]
        if options.tied { ignored.append("decoder.output_projection.weight") }
        let trainedLength =
            model["tokens_per_sample"] != nil
            ? TrainedLength(tokens: trained, source: .checkpointMetadata, key: "\(source).tokens_per_sample")
            : TrainedLength(
                tokens: trained, source: .assumedDefault, key: "fairseq without \(source).tokens_per_sample")
        return CheckpointArchitecture(
            architecture: architecture, ignoredSuffixes: ignored,
            notes: [
                "architecture from fairseq's \(source) (\(model["_name"]?.string ?? model["arch"]?.string ?? "transformer_lm"))"
            ], trainedLength: trainedLength)
    }

    /// Composer (`epE-baB-rank0.pt`) with a Hugging Face model: the config Composer stores under
    /// `state.integrations.huggingface.model.config.content`, imported as a `config.json` would be.
    static func composer(
        _ checkpoint: Checkpoint, allowingUnknownKeys: Bool
    ) throws(ArchitectureError) -> CheckpointArchitecture? {
        guard
            let content = checkpoint.extras["state"]?["integrations"]?["huggingface"]?["model"]?["config"]?["content"],
            case .dict = content
        else { return nil }
        let path = "\(checkpoint.path) (state.integrations.huggingface.model.config)"
        let data: Data
        do { data = try JSONSerialization.data(withJSONObject: content.jsonObject) } catch {
            throw .unreadable(path: path, reason: "the stored config is not JSON: \(error)")
        }
        let imported = try HuggingFace.imported(configJSON: data, path: path, allowingUnknownKeys: allowingUnknownKeys)
        let modelType = content["model_type"]?.string ?? ""
        let (architecture, notes) = HuggingFace.reconcile(imported.architecture, modelType: modelType) {
            checkpoint.info($0)?.shape
        }
        return CheckpointArchitecture(
            architecture: architecture, ignoredSuffixes: HuggingFace.bufferSuffixes[modelType] ?? [],
            notes: ["architecture from Composer's stored Hugging Face config"] + notes,
            trainedLength: HuggingFace.trainedLength(of: architecture, configJSON: data), configAudit: imported.audit)
    }
}
