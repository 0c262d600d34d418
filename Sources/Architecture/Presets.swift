// Built-in architectures: the small byte-level probes the demo runs train (one per position method,
// identical otherwise, as in the paper's comparisons). Declared with `#architecture`, so a width or
// head count typo fails the build instead of a training run.

extension Architecture {
    /// The probe for one position method: byte vocabulary, width 96 (embeddings scaled by √96 as in fairseq, the
    /// paper's code), 3 layers of 4 heads, trained at 64 tokens
    /// (about 350k parameters: three fp16 checkpoints of five methods fit in ~10 MB, and each trains in minutes on 2 cores).
    public static func probe(_ method: ProbeMethod) -> Architecture {
        #architecture("probe-\(method.rawValue)", trainedLength: 64) {
            TokenEmbedding(vocabulary: 256, width: 96, key: "embed", scale: (96.0).squareRoot())
            if method == .sinusoidal { PositionEmbedding(.sinusoidal(layout: .fairseq, offset: 2)) }
            Repeat(3, key: "layers") {
                Residual {
                    LayerNorm(96, key: "attention_norm")
                    Attention(
                        heads: 4, position: method.attentionPosition, key: "attention",
                        projections: .fused(qkv: "qkv", output: "output", packing: .concatenated))
                }
                Residual {
                    LayerNorm(96, key: "mlp_norm")
                    FeedForward(
                        hidden: 384, activation: .gelu, key: "mlp",
                        names: FeedForwardNames(up: "up", down: "down"))
                }
            }
            LayerNorm(96, key: "final_norm")
            Unembedding(tied: true)
        }
    }

    /// Every preset by name (`probe-alibi`, …).
    public static var presets: [String: Architecture] {
        Dictionary(uniqueKeysWithValues: ProbeMethod.allCases.map { ("probe-\($0.rawValue)", probe($0)) })
    }
}

/// The position methods the probes compare.
public enum ProbeMethod: String, Sendable, CaseIterable {
    /// fairseq sinusoidal, the paper's baseline.
    case sinusoidal
    /// Half-split rotary over the whole head.
    case rotary
    /// T5 bias, 32 buckets, max distance 128, shared.
    case t5
    /// ALiBi.
    case alibi
    /// No position information.
    case nope

    var attentionPosition: AttentionPosition {
        switch self {
        case .sinusoidal, .nope: .none
        case .rotary: .rotary()
        case .t5: .t5()
        case .alibi: .alibi()
        }
    }
}
