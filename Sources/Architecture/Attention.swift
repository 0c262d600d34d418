// Causal multi-head attention and how its projections are named and packed in checkpoints.
// Logit per head h: s_h(i,j) = scale · (q_i · k_j) + b_h(i,j) + mask(i,j)   (spec §0)

/// Causal self-attention with `heads` query heads and `kvHeads` key/value heads (GQA/MQA when fewer).
public struct Attention: Sendable, Hashable, Codable {
    /// Query heads `H`.
    public var heads: Int
    /// Key/value heads (`H` for multi-head, 1 for multi-query, a divisor of `H` for grouped-query).
    public var kvHeads: Int?
    /// Width of one head `hs`; `nil` means residual width / `H`.
    public var headWidth: Int?
    /// The position method that plugs into attention (q/k transform or logit bias), `.none` for NoPE.
    public var position: AttentionPosition
    /// Sliding-window size `W`: key `j` is visible to query `i` iff `i − W < j ≤ i`; `nil` is full causal.
    public var window: Int?
    /// Multiplier of `q·k`; `nil` means `1/sqrt(hs)`. Additive biases are never scaled.
    public var scale: Double?
    /// Whether the q/k/v projections carry biases.
    public var bias: Bool
    /// Whether the output projection carries a bias (defaults to `bias`).
    public var outputBias: Bool?
    /// Scope of the block's tensors.
    public var key: String
    /// How q, k and v are stored: fused in one matrix or separate.
    public var projections: Projections
    /// How projection weights are stored.
    public var layout: WeightLayout
    /// RMSNorm of the queries and keys after their projections, before the position method (Qwen3, OLMo2).
    public var queryKeyNorm: QueryKeyNorm?
    /// Soft cap of the scaled scores, `cap · tanh(s / cap)` before any mask (Gemma 2's attn_logit_softcapping).
    public var softcap: Double?

    /// - Parameters:
    ///   - heads: query heads `H`.
    ///   - kvHeads: key/value heads; `nil` = `H`.
    ///   - headWidth: width of one head; `nil` = residual width / `H`.
    ///   - position: the position method (`.alibi()`, `.rotary()`, `.t5()`, …); `.none` for NoPE.
    ///   - window: sliding-window size, or `nil`.
    ///   - scale: `q·k` multiplier; `nil` = `1/sqrt(headWidth)`.
    ///   - bias: q/k/v projection biases.
    ///   - outputBias: output projection bias; `nil` = same as `bias`.
    ///   - key: scope of the block's tensors.
    ///   - projections: fused or separate projection names.
    ///   - layout: `.outIn` or `.inOut` (GPT-2).
    ///   - queryKeyNorm: RMSNorm of queries and keys before the position method, or `nil`.
    ///   - softcap: soft cap of the scaled scores, or `nil`.
    public init(
        heads: Int, kvHeads: Int? = nil, headWidth: Int? = nil, position: AttentionPosition = .none,
        window: Int? = nil, scale: Double? = nil, bias: Bool = true, outputBias: Bool? = nil,
        key: String = "self_attn", projections: Projections = .separate(), layout: WeightLayout = .outIn,
        queryKeyNorm: QueryKeyNorm? = nil, softcap: Double? = nil
    ) {
        self.heads = heads
        self.kvHeads = kvHeads
        self.headWidth = headWidth
        self.position = position
        self.window = window
        self.scale = scale
        self.bias = bias
        self.outputBias = outputBias
        self.key = key
        self.projections = projections
        self.layout = layout
        self.queryKeyNorm = queryKeyNorm
        self.softcap = softcap
    }

    /// Key/value heads, resolved.
    public var resolvedKVHeads: Int { kvHeads ?? heads }

    /// Width of one head given the residual width.
    public func resolvedHeadWidth(residualWidth: Int) -> Int { headWidth ?? residualWidth / max(heads, 1) }

    /// The `q·k` multiplier given the residual width.
    public func resolvedScale(residualWidth: Int) -> Double {
        scale ?? 1 / Double(resolvedHeadWidth(residualWidth: residualWidth)).squareRoot()
    }
}

/// RMSNorm of the projected queries and keys, with learned gains, applied before the position method: over each
/// head's `hs` values with one `[hs]` gain shared by the heads (Qwen3), or over all heads' values at once with an
/// `[H·hs]` gain for the queries and a `[G·hs]` one for the keys (OLMo2).
public struct QueryKeyNorm: Sendable, Hashable, Codable {
    /// What one normalisation spans.
    public enum Scope: String, Sendable, Hashable, Codable {
        /// Each head's vector (Qwen3's `q_norm`/`k_norm` of width head_dim).
        case head
        /// All heads' vectors of a position together (OLMo2's, of width heads × head_dim).
        case heads
    }

    public var scope: Scope
    /// The ε under the square root.
    public var epsilon: Double
    /// Names of the two gains in the attention block's scope.
    public var queryKey: String
    public var keyKey: String

    public init(scope: Scope, epsilon: Double, queryKey: String = "q_norm", keyKey: String = "k_norm") {
        self.scope = scope
        self.epsilon = epsilon
        self.queryKey = queryKey
        self.keyKey = keyKey
    }

    private enum CodingKeys: String, CodingKey { case scope, epsilon, queryKey, keyKey }

    /// Architecture JSON may leave out the gains' names (`q_norm`, `k_norm`).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            scope: try c.decode(Scope.self, forKey: .scope), epsilon: try c.decode(Double.self, forKey: .epsilon),
            queryKey: try c.decodeIfPresent(String.self, forKey: .queryKey) ?? "q_norm",
            keyKey: try c.decodeIfPresent(String.self, forKey: .keyKey) ?? "k_norm")
    }
}

/// How q, k, v projections are laid out in a checkpoint.
public enum Projections: Sendable, Hashable, Codable {
    /// One matrix `[(H + 2·KV)·hs, C]` named `qkv`, then the output projection named `output`.
    case fused(qkv: String, output: String, packing: QKVPacking)
    /// Three matrices and the output projection (Llama/OPT names by default).
    case separate(query: String = "q_proj", key: String = "k_proj", value: String = "v_proj", output: String = "o_proj")
}

/// Row order of a fused q/k/v projection.
public enum QKVPacking: String, Sendable, Hashable, Codable {
    /// All query rows, then all key rows, then all value rows (GPT-2 `c_attn`, MPT `Wqkv`).
    case concatenated
    /// Per head: that head's query, key and value rows (BLOOM, GPT-NeoX `query_key_value`).
    case perHead
}
