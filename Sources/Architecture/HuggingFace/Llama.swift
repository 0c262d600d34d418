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
        try llamaBlocks(
            name: "llama", vocabulary: c.vocabSize, width: c.hiddenSize, hidden: c.intermediateSize,
            layers: c.numHiddenLayers, heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, headDim: c.headDim,
            activation: c.hiddenAct, maxPositions: c.maxPositionEmbeddings, epsilon: c.rmsNormEps,
            tied: c.tieWordEmbeddings, rope: (c.ropeParameters, c.ropeScaling, c.ropeTheta), window: nil,
            qkvBias: c.attentionBias, outputBias: nil, mlpBias: c.mlpBias, rotaryFraction: c.partialRotaryFactor,
            originalMaxPositions: c.originalMaxPositionEmbeddings, path: path)
    }
}
