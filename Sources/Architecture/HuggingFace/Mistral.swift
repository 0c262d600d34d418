import Foundation

// Mistral (`MistralForCausalLM`) and Qwen2 (`Qwen2ForCausalLM`): Llama's blocks (RMSNorm, grouped-query attention,
// half-split rotary, SwiGLU), Mistral with a sliding attention window on every layer, Qwen2 with biases on the
// query, key and value projections (none on the output) and, when `use_sliding_window`, a window on the layers
// from `max_window_layers` on.

@HuggingFaceConfig
struct MistralConfig: Sendable {
    var vocabSize: Int = 32000
    var hiddenSize: Int = 4096
    var intermediateSize: Int = 14336
    var numHiddenLayers: Int = 32
    var numAttentionHeads: Int = 32
    var numKeyValueHeads: Int = 8
    var headDim: Int?
    var hiddenAct: String = "silu"
    var maxPositionEmbeddings: Int = 131072
    var rmsNormEps: Double = 1e-6
    var tieWordEmbeddings: Bool = false
    var ropeTheta: Double?
    var ropeParameters: RopeParameters?
    var ropeScaling: RopeParameters?
    /// `null`: full attention; absent: transformers' default, 4096.
    var slidingWindow: Int?
}

@HuggingFaceConfig
struct Qwen2Config: Sendable {
    var vocabSize: Int = 151936
    var hiddenSize: Int = 4096
    var intermediateSize: Int = 22016
    var numHiddenLayers: Int = 32
    var numAttentionHeads: Int = 32
    var numKeyValueHeads: Int?
    var headDim: Int?
    var hiddenAct: String = "silu"
    var maxPositionEmbeddings: Int = 32768
    var rmsNormEps: Double = 1e-6
    var tieWordEmbeddings: Bool = false
    var ropeTheta: Double?
    var ropeParameters: RopeParameters?
    var ropeScaling: RopeParameters?
    var useSlidingWindow: Bool = false
    var slidingWindow: Int?
    var maxWindowLayers: Int = 28
    var layerTypes: [String]?
}

extension Architecture {
    static func mistral(_ c: MistralConfig, json: Data, path: String) throws(ArchitectureError) -> Architecture {
        // transformers' default window applies when the key is absent; `null` turns it off.
        let present = (try? JSONSerialization.jsonObject(with: json) as? [String: Any])?["sliding_window"] != nil
        let window = present ? c.slidingWindow : 4096
        if let window, window < 1 {
            throw .unsupportedOption(
                path: path, key: "sliding_window", value: "\(window)", reason: "a window must hold at least 1 token")
        }
        return try llamaBlocks(
            name: "mistral", vocabulary: c.vocabSize, width: c.hiddenSize, hidden: c.intermediateSize,
            layers: c.numHiddenLayers, heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, headDim: c.headDim,
            activation: c.hiddenAct, maxPositions: c.maxPositionEmbeddings, epsilon: c.rmsNormEps,
            tied: c.tieWordEmbeddings, rope: (c.ropeParameters, c.ropeScaling, c.ropeTheta), window: window,
            qkvBias: false, path: path)
    }

    static func qwen2(_ c: Qwen2Config, path: String) throws(ArchitectureError) -> Architecture {
        let window = try uniformWindow(
            family: "Qwen2", layerTypes: c.layerTypes, useSlidingWindow: c.useSlidingWindow,
            slidingWindow: c.slidingWindow, maxWindowLayers: c.maxWindowLayers, layers: c.numHiddenLayers, path: path)
        return try llamaBlocks(
            name: "qwen2", vocabulary: c.vocabSize, width: c.hiddenSize, hidden: c.intermediateSize,
            layers: c.numHiddenLayers, heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, headDim: c.headDim,
            activation: c.hiddenAct, maxPositions: c.maxPositionEmbeddings, epsilon: c.rmsNormEps,
            tied: c.tieWordEmbeddings, rope: (c.ropeParameters, c.ropeScaling, c.ropeTheta), window: window,
            qkvBias: true, path: path)
    }

    /// The window of a Qwen-style config, which must be the same on every layer: which layers slide is
    /// `layer_types` when given, else transformers' rule (from `max_window_layers` on, when `use_sliding_window`).
    /// One window for every layer, or none, is what a stack of identical blocks can hold; a mix is refused.
    static func uniformWindow(
        family: String, layerTypes: [String]?, useSlidingWindow: Bool, slidingWindow: Int?, maxWindowLayers: Int,
        layers: Int, path: String
    ) throws(ArchitectureError) -> Int? {
        let sliding =
            layerTypes.map { $0.map { $0 == "sliding_attention" } }
            ?? (0..<layers).map { useSlidingWindow && slidingWindow != nil && $0 >= maxWindowLayers }
        if let type = layerTypes?.first(where: { $0 != "sliding_attention" && $0 != "full_attention" }) {
            throw .unsupportedOption(
                path: path, key: "layer_types", value: type,
                reason: "\(family) layers are \"full_attention\" or \"sliding_attention\"")
        }
        if Set(sliding).count > 1 {
            throw .unsupportedOption(
                path: path, key: layerTypes == nil ? "max_window_layers" : "layer_types",
                value: layerTypes == nil ? "\(maxWindowLayers)" : "a mix of full and sliding layers",
                reason:
                    "some layers use a sliding window and others full attention; this importer builds one kind for "
                    + "every layer (\(family) checkpoints ship use_sliding_window = false)")
        }
        return sliding.first == true ? slidingWindow : nil
    }

    /// The Llama-shaped decoder Llama, Mistral, Qwen2 and Qwen3 share, with HF's tensor names. `outputBias` `nil`
    /// means the same as `qkvBias` (Llama's `attention_bias` covers all four projections).
    static func llamaBlocks(
        name: String, vocabulary: Int, width: Int, hidden: Int, layers: Int, heads: Int, kvHeads: Int?,
        headDim: Int?, activation: String, maxPositions: Int, epsilon: Double, tied: Bool,
        rope parameters: (RopeParameters?, RopeParameters?, Double?), window: Int?, qkvBias: Bool,
        outputBias: Bool? = false, mlpBias: Bool = false, queryKeyNorm: QueryKeyNorm? = nil,
        rotaryFraction: Double? = nil, originalMaxPositions: Int? = nil, path: String
    ) throws(ArchitectureError) -> Architecture {
        let rope = try RopeContext(
            parameters: parameters.0, legacyScaling: parameters.1, theta: parameters.2, fraction: rotaryFraction,
            defaultTheta: 10000, defaultFraction: 1, maxPositions: maxPositions,
            originalMaxPositions: originalMaxPositions, path: path
        ).resolve()
        let activation = try HuggingFace.activation(activation, key: "hidden_act", path: path)
        let headWidth = headDim.flatMap { $0 == width / max(heads, 1) ? nil : $0 }
        return Architecture(name, trainedLength: maxPositions) {
            TokenEmbedding(vocabulary: vocabulary, width: width, key: "model.embed_tokens")
            Repeat(layers, key: "model.layers") {
                Residual {
                    RMSNorm(width, epsilon: epsilon, key: "input_layernorm")
                    Attention(
                        heads: heads, kvHeads: kvHeads, headWidth: headWidth,
                        position: .rotary(
                            fraction: rope.fraction, base: rope.base, layout: .halfSplit, scaling: rope.scaling),
                        window: window, bias: qkvBias, outputBias: outputBias, key: "self_attn",
                        projections: .separate(), queryKeyNorm: queryKeyNorm)
                }
                Residual {
                    RMSNorm(width, epsilon: epsilon, key: "post_attention_layernorm")
                    FeedForward(hidden: hidden, activation: activation, gated: true, bias: mlpBias, key: "mlp")
                }
            }
            RMSNorm(width, epsilon: epsilon, key: "model.norm")
            Unembedding(tied: tied, key: "lm_head")
        }
    }
}
