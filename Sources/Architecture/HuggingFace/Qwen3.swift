import Foundation

// Qwen3 (`Qwen3ForCausalLM`) and OLMo 2 (`Olmo2ForCausalLM`): Llama's blocks with the queries and keys
// RMS-normalised before rotary. Qwen3 normalises each head (`q_norm`/`k_norm` of width head_dim, one gain shared by
// the heads), with `attention_bias` on all four projections. OLMo 2 normalises all heads of a position at once
// (gains of heads × head_dim and kv heads × head_dim) and moves the block norms after the sublayers:
// x + norm(attention(x)), then x + norm(mlp(x)), with no norm before either.

@HuggingFaceConfig
struct Qwen3Config: Sendable {
    var vocabSize: Int = 151936
    var hiddenSize: Int = 4096
    var intermediateSize: Int = 22016
    var numHiddenLayers: Int = 32
    var numAttentionHeads: Int = 32
    var numKeyValueHeads: Int = 32
    var headDim: Int = 128
    var hiddenAct: String = "silu"
    var maxPositionEmbeddings: Int = 32768
    var rmsNormEps: Double = 1e-6
    var tieWordEmbeddings: Bool = false
    var ropeTheta: Double?
    var ropeParameters: RopeParameters?
    var ropeScaling: RopeParameters?
    var attentionBias: Bool = false
    var useSlidingWindow: Bool = false
    var slidingWindow: Int?
    var maxWindowLayers: Int = 28
    var layerTypes: [String]?
}

@HuggingFaceConfig
struct Olmo2Config: Sendable {
    var vocabSize: Int = 50304
    var hiddenSize: Int = 4096
    var intermediateSize: Int = 11008
    var numHiddenLayers: Int = 32
    var numAttentionHeads: Int = 32
    var numKeyValueHeads: Int?
    var hiddenAct: String = "silu"
    var maxPositionEmbeddings: Int = 2048
    var rmsNormEps: Double = 1e-5
    var tieWordEmbeddings: Bool = false
    var ropeTheta: Double?
    var ropeParameters: RopeParameters?
    var ropeScaling: RopeParameters?
    var attentionBias: Bool = false
}

extension Architecture {
    static func qwen3(_ c: Qwen3Config, path: String) throws(ArchitectureError) -> Architecture {
        let window = try uniformWindow(
            family: "Qwen3", layerTypes: c.layerTypes, useSlidingWindow: c.useSlidingWindow,
            slidingWindow: c.slidingWindow, maxWindowLayers: c.maxWindowLayers, layers: c.numHiddenLayers, path: path)
        return try llamaBlocks(
            name: "qwen3", vocabulary: c.vocabSize, width: c.hiddenSize, hidden: c.intermediateSize,
            layers: c.numHiddenLayers, heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, headDim: c.headDim,
            activation: c.hiddenAct, maxPositions: c.maxPositionEmbeddings, epsilon: c.rmsNormEps,
            tied: c.tieWordEmbeddings, rope: (c.ropeParameters, c.ropeScaling, c.ropeTheta), window: window,
            qkvBias: c.attentionBias, outputBias: c.attentionBias,
            queryKeyNorm: QueryKeyNorm(scope: .head, epsilon: c.rmsNormEps), path: path)
    }

    static func olmo2(_ c: Olmo2Config, path: String) throws(ArchitectureError) -> Architecture {
        let rope = try RopeContext(
            parameters: c.ropeParameters, legacyScaling: c.ropeScaling, theta: c.ropeTheta, fraction: nil,
            defaultTheta: 10000, defaultFraction: 1, maxPositions: c.maxPositionEmbeddings, originalMaxPositions: nil,
            path: path
        ).resolve()
        let activation = try HuggingFace.activation(c.hiddenAct, key: "hidden_act", path: path)
        let (width, epsilon) = (c.hiddenSize, c.rmsNormEps)
        return Architecture("olmo2", trainedLength: c.maxPositionEmbeddings) {
            TokenEmbedding(vocabulary: c.vocabSize, width: width, key: "model.embed_tokens")
            Repeat(c.numHiddenLayers, key: "model.layers") {
                Residual {
                    Attention(
                        heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads,
                        position: .rotary(
                            fraction: rope.fraction, base: rope.base, layout: .halfSplit, scaling: rope.scaling),
                        bias: c.attentionBias, key: "self_attn", projections: .separate(),
                        queryKeyNorm: QueryKeyNorm(scope: .heads, epsilon: epsilon))
                    RMSNorm(width, epsilon: epsilon, key: "post_attention_layernorm")
                }
                Residual {
                    FeedForward(
                        hidden: c.intermediateSize, activation: activation, gated: true, bias: false, key: "mlp")
                    RMSNorm(width, epsilon: epsilon, key: "post_feedforward_layernorm")
                }
            }
            RMSNorm(width, epsilon: epsilon, key: "model.norm")
            Unembedding(tied: c.tieWordEmbeddings, key: "lm_head")
        }
    }
}
