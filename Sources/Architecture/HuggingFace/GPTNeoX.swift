// GPT-NeoX / Pythia (`GPTNeoXForCausalLM`): partial half-split rotary, per-head fused `query_key_value`,
// parallel residual by default, untied `embed_out`.

@HuggingFaceConfig
struct GPTNeoXConfig: Sendable {
    var vocabSize: Int = 50432
    var hiddenSize: Int = 6144
    var numHiddenLayers: Int = 44
    var numAttentionHeads: Int = 64
    var intermediateSize: Int = 24576
    var hiddenAct: String = "gelu"
    var maxPositionEmbeddings: Int = 2048
    var layerNormEps: Double = 1e-5
    var tieWordEmbeddings: Bool = false
    var useParallelResidual: Bool = true
    var attentionBias: Bool = true
    @ConfigKey("rotary_pct", "partial_rotary_factor") var rotaryPct: Double?
    @ConfigKey("rotary_emb_base", "rope_theta") var rotaryEmbBase: Double?
    var ropeParameters: RopeParameters?
    var ropeScaling: RopeParameters?
}

extension Architecture {
    static func gptNeoX(_ c: GPTNeoXConfig, path: String) throws(ArchitectureError) -> Architecture {
        let rope = try RopeContext(
            parameters: c.ropeParameters, legacyScaling: c.ropeScaling, theta: c.rotaryEmbBase, fraction: c.rotaryPct,
            defaultTheta: 10000, defaultFraction: 0.25, maxPositions: c.maxPositionEmbeddings, path: path
        ).resolve()
        let activation = try HuggingFace.activation(c.hiddenAct, key: "hidden_act", path: path)
        let width = c.hiddenSize
        let norm = { (key: String) in LayerNorm(width, epsilon: c.layerNormEps, key: key) }
        let attention = Attention(
            heads: c.numAttentionHeads,
            position: .rotary(fraction: rope.fraction, base: rope.base, layout: .halfSplit, scaling: rope.scaling),
            bias: c.attentionBias, key: "attention",
            projections: .fused(qkv: "query_key_value", output: "dense", packing: .perHead))
        let feedForward = FeedForward(
            hidden: c.intermediateSize, activation: activation, key: "mlp",
            names: FeedForwardNames(up: "dense_h_to_4h", down: "dense_4h_to_h"))
        return Architecture("gpt_neox", trainedLength: c.maxPositionEmbeddings) {
            TokenEmbedding(vocabulary: c.vocabSize, width: width, key: "gpt_neox.embed_in")
            Repeat(c.numHiddenLayers, key: "gpt_neox.layers") {
                if c.useParallelResidual {
                    ParallelResidual {
                        Branch {
                            norm("input_layernorm"); attention
                        }
                        Branch {
                            norm("post_attention_layernorm"); feedForward
                        }
                    }
                } else {
                    Residual {
                        norm("input_layernorm"); attention
                    }
                    Residual {
                        norm("post_attention_layernorm"); feedForward
                    }
                }
            }
            norm("gpt_neox.final_layer_norm")
            Unembedding(tied: c.tieWordEmbeddings, key: "embed_out")
        }
    }
}
