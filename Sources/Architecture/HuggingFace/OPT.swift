// OPT (`OPTForCausalLM`): learned positions with offset 2, pre- or post-LN (`do_layer_norm_before`),
// optional `project_in`/`project_out` when `word_embed_proj_dim` differs (OPT-350m).

@HuggingFaceConfig
struct OPTConfig: Sendable {
    var vocabSize: Int = 50272
    var hiddenSize: Int = 768
    var numHiddenLayers: Int = 12
    var ffnDim: Int = 3072
    var maxPositionEmbeddings: Int = 2048
    var doLayerNormBefore: Bool = true
    @ConfigKey("_remove_final_layer_norm") var removeFinalLayerNorm: Bool = false
    var wordEmbedProjDim: Int?
    var numAttentionHeads: Int = 12
    var activationFunction: String = "relu"
    var enableBias: Bool = true
    var layerNormElementwiseAffine: Bool = true
    var tieWordEmbeddings: Bool = true
}

extension Architecture {
    static func opt(_ c: OPTConfig, path: String) throws(ArchitectureError) -> Architecture {
        let activation = try HuggingFace.activation(c.activationFunction, key: "activation_function", path: path)
        let width = c.hiddenSize
        let wordWidth = c.wordEmbedProjDim ?? width
        let affine = c.layerNormElementwiseAffine
        let attention = Attention(
            heads: c.numAttentionHeads, bias: c.enableBias, key: "self_attn",
            projections: .separate(output: "out_proj"))
        let attentionNorm = LayerNorm(width, affine: affine, key: "self_attn_layer_norm")
        let feedForward = FeedForward(
            hidden: c.ffnDim, activation: activation, bias: c.enableBias, key: "",
            names: FeedForwardNames(up: "fc1", down: "fc2"))
        let feedForwardNorm = LayerNorm(width, affine: affine, key: "final_layer_norm")
        return Architecture("opt", trainedLength: c.maxPositionEmbeddings) {
            TokenEmbedding(vocabulary: c.vocabSize, width: wordWidth, key: "model.decoder.embed_tokens")
            if wordWidth != width { Linear(input: wordWidth, output: width, key: "model.decoder.project_in") }
            PositionEmbedding(
                .learned(rows: c.maxPositionEmbeddings + 2, offset: 2), key: "model.decoder.embed_positions")
            Repeat(c.numHiddenLayers, key: "model.decoder.layers") {
                decoderLayer(
                    preNorm: c.doLayerNormBefore, attentionNorm: attentionNorm, attention: attention,
                    feedForwardNorm: feedForwardNorm, feedForward: feedForward)
            }
            if c.doLayerNormBefore && !c.removeFinalLayerNorm {
                LayerNorm(width, affine: affine, key: "model.decoder.final_layer_norm")
            }
            if wordWidth != width { Linear(input: width, output: wordWidth, key: "model.decoder.project_out") }
            Unembedding(tied: c.tieWordEmbeddings, key: "lm_head")
        }
    }
}
