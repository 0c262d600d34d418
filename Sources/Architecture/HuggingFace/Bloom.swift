// BLOOM (`BloomForCausalLM`): ALiBi with the paper's slopes, a LayerNorm right after the embedding,
// per-head fused `query_key_value`, tanh GELU.

@HuggingFaceConfig
struct BloomConfig: Sendable {
    var vocabSize: Int = 250880
    @ConfigKey("hidden_size", "n_embed") var hiddenSize: Int = 64
    @ConfigKey("n_layer", "num_hidden_layers") var nLayer: Int = 2
    @ConfigKey("n_head", "num_attention_heads") var nHead: Int = 8
    var layerNormEpsilon: Double = 1e-5
    var applyResidualConnectionPostLayernorm: Bool = false
    /// BLOOM configs carry no maximum position; its models were trained at 2048 tokens.
    @ConfigKey("seq_length", "max_position_embeddings") var seqLength: Int = 2048
    var tieWordEmbeddings: Bool = true
}

extension Architecture {
    static func bloom(_ c: BloomConfig, path: String) throws(ArchitectureError) -> Architecture {
        if c.applyResidualConnectionPostLayernorm {
            throw .unsupportedOption(
                path: path, key: "apply_residual_connection_post_layernorm", value: "true",
                reason: "residuals taken after the norm are not representable yet")
        }
        let width = c.hiddenSize
        let eps = c.layerNormEpsilon
        return Architecture("bloom", trainedLength: c.seqLength) {
            TokenEmbedding(vocabulary: c.vocabSize, width: width, key: "transformer.word_embeddings")
            LayerNorm(width, epsilon: eps, key: "transformer.word_embeddings_layernorm")
            Repeat(c.nLayer, key: "transformer.h") {
                Residual {
                    LayerNorm(width, epsilon: eps, key: "input_layernorm")
                    Attention(
                        heads: c.nHead, position: .alibi(), key: "self_attention",
                        projections: .fused(qkv: "query_key_value", output: "dense", packing: .perHead))
                }
                Residual {
                    LayerNorm(width, epsilon: eps, key: "post_attention_layernorm")
                    FeedForward(
                        hidden: 4 * width, activation: .geluTanh, key: "mlp",
                        names: FeedForwardNames(up: "dense_h_to_4h", down: "dense_4h_to_h"))
                }
            }
            LayerNorm(width, epsilon: eps, key: "transformer.ln_f")
            Unembedding(tied: c.tieWordEmbeddings, key: "lm_head")
        }
    }
}
