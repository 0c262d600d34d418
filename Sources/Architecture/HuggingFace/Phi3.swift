import Foundation

// Phi-3 (`Phi3ForCausalLM`; Phi-3, Phi-3.5 and Phi-4-mini): Llama's blocks with q, k and v in one `qkv_proj` (all
// query rows, then key, then value) and gate and up in one `gate_up_proj` (gate rows first), rotary with LongRoPE's
// short and long factors (older configs call the type "su" or "yarn"; transformers reads both as LongRoPE), an
// optional sliding window on every layer and a rotated fraction of each head (`partial_rotary_factor`).

@HuggingFaceConfig
struct Phi3Config: Sendable {
    var vocabSize: Int = 32064
    var hiddenSize: Int = 3072
    var intermediateSize: Int = 8192
    var numHiddenLayers: Int = 32
    var numAttentionHeads: Int = 32
    var numKeyValueHeads: Int?
    var headDim: Int?
    var hiddenAct: String = "silu"
    var maxPositionEmbeddings: Int = 4096
    var originalMaxPositionEmbeddings: Int = 4096
    var rmsNormEps: Double = 1e-5
    var tieWordEmbeddings: Bool = false
    var ropeTheta: Double?
    var partialRotaryFactor: Double?
    var ropeParameters: RopeParameters?
    var ropeScaling: RopeParameters?
    var slidingWindow: Int?
}

extension Architecture {
    static func phi3(_ c: Phi3Config, path: String) throws(ArchitectureError) -> Architecture {
        func longRoPENamed(_ parameters: RopeParameters?) -> RopeParameters? {
            guard var parameters, ["su", "yarn"].contains(parameters.ropeType ?? "") else { return parameters }
            parameters.ropeType = "longrope"
            return parameters
        }
        let rope = try RopeContext(
            parameters: longRoPENamed(c.ropeParameters), legacyScaling: longRoPENamed(c.ropeScaling),
            theta: c.ropeTheta, fraction: c.partialRotaryFactor, defaultTheta: 10000, defaultFraction: 1,
            maxPositions: c.maxPositionEmbeddings, originalMaxPositions: c.originalMaxPositionEmbeddings, path: path
        ).resolve()
        if let window = c.slidingWindow, window < 1 {
            throw .unsupportedOption(
                path: path, key: "sliding_window", value: "\(window)", reason: "a window must hold at least 1 token")
        }
        let activation = try HuggingFace.activation(c.hiddenAct, key: "hidden_act", path: path)
        let (width, epsilon) = (c.hiddenSize, c.rmsNormEps)
        let headWidth = c.headDim.flatMap { $0 == width / max(c.numAttentionHeads, 1) ? nil : $0 }
        return Architecture("phi3", trainedLength: c.maxPositionEmbeddings) {
            TokenEmbedding(vocabulary: c.vocabSize, width: width, key: "model.embed_tokens")
            Repeat(c.numHiddenLayers, key: "model.layers") {
                Residual {
                    RMSNorm(width, epsilon: epsilon, key: "input_layernorm")
                    Attention(
                        heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, headWidth: headWidth,
                        position: .rotary(
                            fraction: rope.fraction, base: rope.base, layout: .halfSplit, scaling: rope.scaling),
                        window: c.slidingWindow, bias: false, key: "self_attn",
                        projections: .fused(qkv: "qkv_proj", output: "o_proj", packing: .concatenated))
                }
                Residual {
                    RMSNorm(width, epsilon: epsilon, key: "post_attention_layernorm")
                    FeedForward(
                        hidden: c.intermediateSize, activation: activation, gated: true, bias: false, key: "mlp",
                        names: FeedForwardNames(gateUp: "gate_up_proj"))
                }
            }
            RMSNorm(width, epsilon: epsilon, key: "model.norm")
            Unembedding(tied: c.tieWordEmbeddings, key: "lm_head")
        }
    }
}
