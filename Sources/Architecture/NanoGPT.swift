// nanoGPT (github.com/karpathy/nanoGPT, model.py): GPT-2's shape with nn.Linear weights stored [out, in], exact
// GELU, optional biases (`bias=False` drops every Linear and LayerNorm bias), and lm_head tied to wte.

extension Architecture {
    /// nanoGPT's `GPT` from the `model_args` its `train.py` saves in `ckpt.pt`.
    /// - Parameters: the `GPTConfig` fields: `n_layer`, `n_head`, `n_embd`, `block_size`, `vocab_size`, `bias`.
    public static func nanoGPT(
        layers: Int, heads: Int, width: Int, blockSize: Int, vocabulary: Int, bias: Bool
    ) -> Architecture {
        Architecture("nanogpt", trainedLength: blockSize) {
            TokenEmbedding(vocabulary: vocabulary, width: width, key: "transformer.wte")
            PositionEmbedding(.learned(rows: blockSize), key: "transformer.wpe")
            Repeat(layers, key: "transformer.h") {
                Residual {
                    LayerNorm(width, epsilon: 1e-5, bias: bias, key: "ln_1")
                    Attention(
                        heads: heads, bias: bias, key: "attn",
                        projections: .fused(qkv: "c_attn", output: "c_proj", packing: .concatenated))
                }
                Residual {
                    LayerNorm(width, epsilon: 1e-5, bias: bias, key: "ln_2")
                    FeedForward(
                        hidden: 4 * width, activation: .gelu, bias: bias, key: "mlp",
                        names: FeedForwardNames(up: "c_fc", down: "c_proj"))
                }
            }
            LayerNorm(width, epsilon: 1e-5, bias: bias, key: "transformer.ln_f")
            Unembedding(tied: true, key: "lm_head")
        }
    }
}
