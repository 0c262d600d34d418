import Foundation

/// fairseq's `transformer_lm` (the ALiBi paper's code): what its checkpoint's `cfg.model` (or `args`) says.
public struct FairseqLanguageModelOptions: Sendable, Hashable {
    public var vocabulary: Int
    public var width: Int
    public var layers: Int
    public var heads: Int
    public var feedForward: Int
    /// Pre-norm (`decoder_normalize_before`), with a final `decoder.layer_norm`; post-norm otherwise.
    public var normalizeBefore: Bool
    /// Input positions: learned (`decoder_learned_pos`), sinusoidal (the default), or none
    /// (`no_token_positional_embeddings`, as the ALiBi fork's models).
    public var positions: Positions
    /// ALiBi biases in attention (the ALiBi fork).
    public var alibi: Bool
    /// `tokens_per_sample`: the trained length.
    public var trainedLength: Int
    /// `max_target_positions` (learned tables hold this many rows plus fairseq's padding offset).
    public var maximumPositions: Int
    /// Embeddings multiplied by √width unless `no_scale_embedding`.
    public var scaleEmbedding: Bool
    public var activation: Activation
    /// `share_decoder_input_output_embed`.
    public var tied: Bool

    public enum Positions: String, Sendable, Hashable { case sinusoidal, learned, none }

    public init(
        vocabulary: Int, width: Int, layers: Int, heads: Int, feedForward: Int, normalizeBefore: Bool,
        positions: Positions, alibi: Bool, trainedLength: Int, maximumPositions: Int, scaleEmbedding: Bool,
        activation: Activation, tied: Bool
    ) {
        self.vocabulary = vocabulary
        self.width = width
        self.layers = layers
        self.heads = heads
        self.feedForward = feedForward
        self.normalizeBefore = normalizeBefore
        self.positions = positions
        self.alibi = alibi
        self.trainedLength = trainedLength
        self.maximumPositions = maximumPositions
        self.scaleEmbedding = scaleEmbedding
        self.activation = activation
        self.tied = tied
    }
}

extension Architecture {
    /// fairseq's padding index (its dictionaries put `<pad>` at 1): positions start at `padding + 1`.
    static let fairseqPadding = 1

    /// fairseq's `TransformerLanguageModel` decoder with its state-dict names.
    public static func fairseqLM(_ o: FairseqLanguageModelOptions) -> Architecture {
        let offset = fairseqPadding + 1
        let attention = Attention(
            heads: o.heads, position: o.alibi ? .alibi() : .none, key: "self_attn",
            projections: .separate(output: "out_proj"))
        let attentionNorm = LayerNorm(o.width, key: "self_attn_layer_norm")
        let feedForward = FeedForward(
            hidden: o.feedForward, activation: o.activation, key: "", names: FeedForwardNames(up: "fc1", down: "fc2"))
        let feedForwardNorm = LayerNorm(o.width, key: "final_layer_norm")
        return Architecture(
            o.alibi ? "fairseq-transformer-lm-alibi" : "fairseq-transformer-lm", trainedLength: o.trainedLength
        ) {
            TokenEmbedding(
                vocabulary: o.vocabulary, width: o.width, key: "decoder.embed_tokens",
                scale: o.scaleEmbedding ? Double(o.width).squareRoot() : nil)
            switch o.positions {
            case .sinusoidal:
                PositionEmbedding(.sinusoidal(layout: .fairseq, offset: offset), key: "decoder.embed_positions")
            case .learned:
                PositionEmbedding(
                    .learned(rows: o.maximumPositions + offset, offset: offset), key: "decoder.embed_positions")
            case .none:
                []
            }
            Repeat(o.layers, key: "decoder.layers") {
                decoderLayer(
                    preNorm: o.normalizeBefore, attentionNorm: attentionNorm, attention: attention,
                    feedForwardNorm: feedForwardNorm, feedForward: feedForward)
            }
            if o.normalizeBefore { LayerNorm(o.width, key: "decoder.layer_norm") }
            Unembedding(tied: o.tied, key: "decoder.output_projection")
        }
    }
}

extension Architecture {
    /// A decoder layer of two residual blocks, normalized before (pre-norm) or after (post-norm) each: OPT and
    /// fairseq declare theirs this way.
    @ArchitectureBuilder
    static func decoderLayer(
        preNorm: Bool, attentionNorm: LayerNorm, attention: Attention, feedForwardNorm: LayerNorm,
        feedForward: FeedForward
    ) -> [Layer] {
        if preNorm {
            Residual {
                attentionNorm; attention
            }
            Residual {
                feedForwardNorm; feedForward
            }
        } else {
            Residual(.post) {
                attention; attentionNorm
            }
            Residual(.post) {
                feedForward; feedForwardNorm
            }
        }
    }
}
