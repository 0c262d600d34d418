// Llama (`LlamaForCausalLM`): RMSNorm, grouped-query attention, half-split rotary with any HF scaling
// type, SwiGLU feed-forward.

@HuggingFaceConfig
struct LlamaConfig: Sendable {
    var vocabSize: Int = 32000
    var hiddenSize: Int = 4096
    var intermediateSize: Int = 11008
    var numHiddenLayers: Int = 32
    var numAttentionHeads: Int = 32
    var numKeyValueHeads: Int?
    var headDim: Int?
    var hiddenAct: String = "silu"
    var maxPositionEmbeddings: Int = 2048
    var originalMaxPositionEmbeddings: Int?
    var rmsNormEps: Double = 1e-6
    var tieWordEmbeddings: Bool = false
    var attentionBias: Bool = false
    var mlpBias: Bool = false
    var ropeTheta: Double?
    var partialRotaryFactor: Double?
    var ropeParameters: RopeParameters?
    var ropeScaling: RopeParameters?
}

extension Architecture {
    static func llama(_ c: LlamaConfig, path: String) throws(ArchitectureError) -> Architecture {
        let rope = try RopeContext(
            parameters: c.ropeParameters, legacyScaling: c.ropeScaling, theta: c.ropeTheta,
            fraction: c.partialRotaryFactor,
            defaultTheta: 10000, defaultFraction: 1, maxPositions: c.maxPositionEmbeddings,
            originalMaxPositions: c.originalMaxPositionEmbeddings, path: path
        ).resolve()
        let activation = try HuggingFace.activation(c.hiddenAct, key: "hidden_act", path: path)
        let width = c.hiddenSize
        let headWidth = c.headDim.flatMap { $0 == width / max(c.numAttentionHeads, 1) ? nil : $0 }
        return Architecture("llama", trainedLength: c.maxPositionEmbeddings) {
            TokenEmbedding(vocabulary: c.vocabSize, width: width, key: "model.embed_tokens")
            Repeat(c.numHiddenLayers, key: "model.layers") {
                Residual {
                    RMSNorm(width, epsilon: c.rmsNormEps, key: "input_layernorm")
                    Attention(
                        heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, headWidth: headWidth,
                        position: .rotary(
                            fraction: rope.fraction, base: rope.base, layout: .halfSplit, scaling: rope.scaling),
                        bias: c.attentionBias, key: "self_attn", projections: .separate())
                }
                Residual {
                    RMSNorm(width, epsilon: c.rmsNormEps, key: "post_attention_layernorm")
                    FeedForward(
                        hidden: c.intermediateSize, activation: activation, gated: true, bias: c.mlpBias, key: "mlp")
                }
            }
            RMSNorm(width, epsilon: c.rmsNormEps, key: "model.norm")
            Unembedding(tied: c.tieWordEmbeddings, key: "lm_head")
        }
    }
}
