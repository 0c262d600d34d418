// GPT-2 (`GPT2LMHeadModel`): learned positions, Conv1D weights stored [in, out], fused c_attn.

@HuggingFaceConfig
struct GPT2Config: Sendable {
    var vocabSize: Int = 50257
    @ConfigKey("n_positions", "max_position_embeddings") var nPositions: Int = 1024
    @ConfigKey("n_embd", "hidden_size") var nEmbd: Int = 768
    @ConfigKey("n_layer", "num_hidden_layers") var nLayer: Int = 12
    @ConfigKey("n_head", "num_attention_heads") var nHead: Int = 12
    var nInner: Int?
    var activationFunction: String = "gelu_new"
    var layerNormEpsilon: Double = 1e-5
    var scaleAttnWeights: Bool = true
    var scaleAttnByInverseLayerIdx: Bool = false
    var addCrossAttention: Bool = false
    var tieWordEmbeddings: Bool = true
}

extension Architecture {
    static func gpt2(_ c: GPT2Config, path: String) throws(ArchitectureError) -> Architecture {
        if c.scaleAttnByInverseLayerIdx {
            throw .unsupportedOption(
                path: path, key: "scale_attn_by_inverse_layer_idx", value: "true",
                reason: "per-layer attention scales are not representable yet")
        }
        if c.addCrossAttention {
            throw .unsupportedOption(
                path: path, key: "add_cross_attention", value: "true",
                reason: "only decoder-only language models are evaluated")
        }
        let activation = try HuggingFace.activation(c.activationFunction, key: "activation_function", path: path)
        let width = c.nEmbd
        return Architecture("gpt2", trainedLength: c.nPositions) {
            TokenEmbedding(vocabulary: c.vocabSize, width: width, key: "transformer.wte")
            PositionEmbedding(.learned(rows: c.nPositions), key: "transformer.wpe")
            Repeat(c.nLayer, key: "transformer.h") {
                Residual {
                    LayerNorm(width, epsilon: c.layerNormEpsilon, key: "ln_1")
                    Attention(
                        heads: c.nHead, scale: c.scaleAttnWeights ? nil : 1, key: "attn",
                        projections: .fused(qkv: "c_attn", output: "c_proj", packing: .concatenated), layout: .inOut)
                }
                Residual {
                    LayerNorm(width, epsilon: c.layerNormEpsilon, key: "ln_2")
                    FeedForward(
                        hidden: c.nInner ?? 4 * width, activation: activation, key: "mlp",
                        names: FeedForwardNames(up: "c_fc", down: "c_proj"), layout: .inOut)
                }
            }
            LayerNorm(width, epsilon: c.layerNormEpsilon, key: "transformer.ln_f")
            Unembedding(tied: c.tieWordEmbeddings, key: "lm_head")
        }
    }
}
