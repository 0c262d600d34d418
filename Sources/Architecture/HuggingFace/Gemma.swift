import Foundation

// Gemma (`GemmaForCausalLM`) and Gemma 2 (`Gemma2ForCausalLM`): Llama-like blocks with the embedding scaled by
// √hidden_size, RMSNorm gains stored as w and applied as 1 + w, GeGLU (tanh GELU) feed-forwards, tied embeddings and
// wide heads (head_dim 256). Gemma 2 adds a norm after each sublayer as well as before it, a q·k scale of
// query_pre_attn_scalar^−½, soft-capped attention scores and logits (cap · tanh(x / cap)), and a sliding window on
// alternate layers (`layer_types`; transformers' default: layers 0, 2, 4, … slide).

@HuggingFaceConfig
struct GemmaConfig: Sendable {
    var vocabSize: Int = 256000
    var hiddenSize: Int = 3072
    var intermediateSize: Int = 24576
    var numHiddenLayers: Int = 28
    var numAttentionHeads: Int = 16
    var numKeyValueHeads: Int = 16
    var headDim: Int = 256
    var hiddenAct: String = "gelu_pytorch_tanh"
    var maxPositionEmbeddings: Int = 8192
    var rmsNormEps: Double = 1e-6
    var tieWordEmbeddings: Bool = true
    var ropeTheta: Double?
    var ropeParameters: RopeParameters?
    var ropeScaling: RopeParameters?
    var attentionBias: Bool = false
}

@HuggingFaceConfig
struct Gemma2Config: Sendable {
    var vocabSize: Int = 256000
    var hiddenSize: Int = 2304
    var intermediateSize: Int = 9216
    var numHiddenLayers: Int = 26
    var numAttentionHeads: Int = 8
    var numKeyValueHeads: Int = 4
    var headDim: Int = 256
    var hiddenActivation: String = "gelu_pytorch_tanh"
    var maxPositionEmbeddings: Int = 8192
    var rmsNormEps: Double = 1e-6
    var tieWordEmbeddings: Bool = true
    var ropeTheta: Double?
    var ropeParameters: RopeParameters?
    var ropeScaling: RopeParameters?
    var attentionBias: Bool = false
    var queryPreAttnScalar: Double = 256
    var slidingWindow: Int? = 4096
    var layerTypes: [String]?
    var finalLogitSoftcapping: Double? = 30
    var attnLogitSoftcapping: Double? = 50
}

extension Architecture {
    static func gemma(_ c: GemmaConfig, path: String) throws(ArchitectureError) -> Architecture {
        let rope = try RopeContext(
            parameters: c.ropeParameters, legacyScaling: c.ropeScaling, theta: c.ropeTheta, fraction: nil,
            defaultTheta: 10000, defaultFraction: 1, maxPositions: c.maxPositionEmbeddings, originalMaxPositions: nil,
            path: path
        ).resolve()
        // transformers 5 reads the official releases' legacy "gelu" as the tanh approximation it was meant to be.
        let activation = try HuggingFace.activation(
            c.hiddenAct == "gelu" ? "gelu_pytorch_tanh" : c.hiddenAct, key: "hidden_act", path: path)
        let (width, epsilon) = (c.hiddenSize, c.rmsNormEps)
        let headWidth = c.headDim == width / max(c.numAttentionHeads, 1) ? nil : c.headDim
        return Architecture("gemma", trainedLength: c.maxPositionEmbeddings) {
            TokenEmbedding(
                vocabulary: c.vocabSize, width: width, key: "model.embed_tokens", scale: Double(width).squareRoot())
            Repeat(c.numHiddenLayers, key: "model.layers") {
                Residual {
                    RMSNorm(width, epsilon: epsilon, key: "input_layernorm", gainOffset: 1)
                    Attention(
                        heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, headWidth: headWidth,
                        position: .rotary(
                            fraction: rope.fraction, base: rope.base, layout: .halfSplit, scaling: rope.scaling),
                        bias: c.attentionBias, key: "self_attn", projections: .separate())
                }
                Residual {
                    RMSNorm(width, epsilon: epsilon, key: "post_attention_layernorm", gainOffset: 1)
                    FeedForward(
                        hidden: c.intermediateSize, activation: activation, gated: true, bias: false, key: "mlp")
                }
            }
            RMSNorm(width, epsilon: epsilon, key: "model.norm", gainOffset: 1)
            Unembedding(tied: c.tieWordEmbeddings, key: "lm_head")
        }
    }

    static func gemma2(_ c: Gemma2Config, json: Data, path: String) throws(ArchitectureError) -> Architecture {
        // The caps and the window default to Gemma 2's values when absent; an explicit null turns them off.
        var c = c
        let raw = (try? JSONSerialization.jsonObject(with: json) as? [String: Any]) ?? [:]
        if raw["attn_logit_softcapping"] is NSNull { c.attnLogitSoftcapping = nil }
        if raw["final_logit_softcapping"] is NSNull { c.finalLogitSoftcapping = nil }
        if raw["sliding_window"] is NSNull { c.slidingWindow = nil }
        let rope = try RopeContext(
            parameters: c.ropeParameters, legacyScaling: c.ropeScaling, theta: c.ropeTheta, fraction: nil,
            defaultTheta: 10000, defaultFraction: 1, maxPositions: c.maxPositionEmbeddings, originalMaxPositions: nil,
            path: path
        ).resolve()
        let activation = try HuggingFace.activation(c.hiddenActivation, key: "hidden_activation", path: path)
        let types = c.layerTypes ?? (0..<c.numHiddenLayers).map { $0 % 2 == 0 ? "sliding_attention" : "full_attention" }
        guard types.count == c.numHiddenLayers else {
            throw .badConfig(
                path: path, key: "layer_types",
                reason: "\(types.count) entries for \(c.numHiddenLayers) layers (num_hidden_layers)")
        }
        if let type = types.first(where: { $0 != "sliding_attention" && $0 != "full_attention" }) {
            throw .unsupportedOption(
                path: path, key: "layer_types", value: type,
                reason: "Gemma 2 layers are \"full_attention\" or \"sliding_attention\"")
        }
        for (key, cap) in [
            ("attn_logit_softcapping", c.attnLogitSoftcapping), ("final_logit_softcapping", c.finalLogitSoftcapping),
        ] {
            if let cap, !(cap > 0) {
                throw .unsupportedOption(path: path, key: key, value: "\(cap)", reason: "a soft cap must be positive")
            }
        }
        if let window = c.slidingWindow, window < 1 {
            throw .unsupportedOption(
                path: path, key: "sliding_window", value: "\(window)", reason: "a window must hold at least 1 token")
        }
        let (width, epsilon) = (c.hiddenSize, c.rmsNormEps)
        let headWidth = c.headDim == width / max(c.numAttentionHeads, 1) ? nil : c.headDim
        func layer(sliding: Bool, key: String) -> [Layer] {
            let attention = Attention(
                heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, headWidth: headWidth,
                position: .rotary(fraction: rope.fraction, base: rope.base, layout: .halfSplit, scaling: rope.scaling),
                window: sliding ? c.slidingWindow : nil, scale: 1 / c.queryPreAttnScalar.squareRoot(),
                bias: c.attentionBias, key: "self_attn", projections: .separate(), softcap: c.attnLogitSoftcapping)
            return [
                .residual(
                    Residual(key: key) {
                        RMSNorm(width, epsilon: epsilon, key: "input_layernorm", gainOffset: 1)
                        attention
                        RMSNorm(width, epsilon: epsilon, key: "post_attention_layernorm", gainOffset: 1)
                    }),
                .residual(
                    Residual(key: key) {
                        RMSNorm(width, epsilon: epsilon, key: "pre_feedforward_layernorm", gainOffset: 1)
                        FeedForward(
                            hidden: c.intermediateSize, activation: activation, gated: true, bias: false, key: "mlp")
                        RMSNorm(width, epsilon: epsilon, key: "post_feedforward_layernorm", gainOffset: 1)
                    }),
            ]
        }
        let uniform = Set(types).count == 1
        return Architecture("gemma2", trainedLength: c.maxPositionEmbeddings) {
            TokenEmbedding(
                vocabulary: c.vocabSize, width: width, key: "model.embed_tokens", scale: Double(width).squareRoot())
            if uniform {
                Repeat(c.numHiddenLayers, key: "model.layers") {
                    layer(sliding: types.first == "sliding_attention", key: "")
                }
            } else {
                for (index, type) in types.enumerated() {
                    layer(sliding: type == "sliding_attention", key: "model.layers.\(index)")
                }
            }
            RMSNorm(width, epsilon: epsilon, key: "model.norm", gainOffset: 1)
            Unembedding(tied: c.tieWordEmbeddings, key: "lm_head", softcap: c.finalLogitSoftcapping)
        }
    }
}
