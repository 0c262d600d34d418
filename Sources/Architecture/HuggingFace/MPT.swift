// MPT (`MptForCausalLM`): ALiBi with `alibi_bias_max`, bias-free LayerNorms and projections,
// concatenated `Wqkv`, exact GELU. `transformers` implements only the ALiBi variant.

@HuggingFaceConfig
struct MPTAttentionConfig: Sendable {
    var attnType: String = "multihead_attention"
    var clipQkv: Double?
    var softmaxScale: Double?
    var prefixLm: Bool = false
    var qkLn: Bool = false
    var alibi: Bool = true
    var alibiBiasMax: Double = 8

    /// HF's defaults, used when a config has no `attn_config`.
    static let defaults = MPTAttentionConfig()
}

@HuggingFaceConfig
struct MPTConfig: Sendable {
    @ConfigKey("d_model", "hidden_size") var dModel: Int = 2048
    @ConfigKey("n_heads", "num_attention_heads") var nHeads: Int = 16
    @ConfigKey("n_layers", "num_hidden_layers") var nLayers: Int = 24
    var expansionRatio: Int = 4
    var maxSeqLen: Int = 2048
    var vocabSize: Int = 50368
    var layerNormEpsilon: Double = 1e-5
    var attnConfig: MPTAttentionConfig?
    var logitScale: Double?
    var tieWordEmbeddings: Bool = true
}

extension Architecture {
    static func mpt(_ c: MPTConfig, path: String) throws(ArchitectureError) -> Architecture {
        var attn = MPTAttentionConfig.defaults
        if let given = c.attnConfig { attn = given }
        let refusals: [(String, String?, String)] = [
            ("attn_config.alibi", attn.alibi ? nil : "false", "transformers' MPT implements only ALiBi"),
            (
                "attn_config.attn_type", attn.attnType == "multihead_attention" ? nil : attn.attnType,
                "transformers' MPT builds multi-head attention only"
            ),
            ("attn_config.clip_qkv", attn.clipQkv.map { "\($0)" }, "clipping q/k/v is not implemented"),
            ("attn_config.qk_ln", attn.qkLn ? "true" : nil, "q/k LayerNorm is not implemented"),
            ("attn_config.prefix_lm", attn.prefixLm ? "true" : nil, "prefix-LM masks are not causal"),
            ("logit_scale", c.logitScale.map { "\($0)" }, "scaled logits are not implemented"),
        ]
        if let (key, value, reason) = refusals.first(where: { $0.1 != nil }) {
            throw .unsupportedOption(path: path, key: key, value: value ?? "", reason: reason)
        }
        let width = c.dModel
        let eps = c.layerNormEpsilon
        return Architecture("mpt", trainedLength: c.maxSeqLen) {
            TokenEmbedding(vocabulary: c.vocabSize, width: width, key: "transformer.wte")
            Repeat(c.nLayers, key: "transformer.blocks") {
                Residual {
                    LayerNorm(width, epsilon: eps, bias: false, key: "norm_1")
                    Attention(
                        heads: c.nHeads, position: .alibi(maxBias: attn.alibiBiasMax), scale: attn.softmaxScale,
                        bias: false, key: "attn",
                        projections: .fused(qkv: "Wqkv", output: "out_proj", packing: .concatenated))
                }
                Residual {
                    LayerNorm(width, epsilon: eps, bias: false, key: "norm_2")
                    FeedForward(hidden: c.expansionRatio * width, activation: .gelu, bias: false, key: "ffn")
                }
            }
            LayerNorm(width, epsilon: eps, bias: false, key: "transformer.norm_f")
            Unembedding(tied: c.tieWordEmbeddings, key: "lm_head")
        }
    }
}
