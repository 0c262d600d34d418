// Leaf nodes of the architecture DSL. Each is a plain value: declaring one never allocates weights.
// Checkpoint names are written once, next to the node they name (`key:`); see `ParameterManifest`.

/// Looks token ids up in an embedding table: `x[t] = scale · E[token[t]]`, table `[V, C]`.
public struct TokenEmbedding: Sendable, Hashable, Codable {
    /// Vocabulary size `V` (rows of the table).
    public var vocabulary: Int
    /// Embedding width `C`.
    public var width: Int
    /// Checkpoint name of the table, without the `.weight` suffix.
    public var key: String
    /// Multiplier of the looked-up rows (fairseq's `embed_scale = √C`), or `nil` for none. Only the input side
    /// is scaled; a tied unembedding reads the table as stored.
    public var scale: Double?

    /// - Parameters:
    ///   - vocabulary: rows of the table `[V, C]`.
    ///   - width: columns of the table, the residual width that follows.
    ///   - key: checkpoint name of the table (the `.weight` suffix is added).
    ///   - scale: multiplier of the looked-up rows (fairseq models: `√width`); `nil` leaves them as stored.
    public init(vocabulary: Int, width: Int, key: String = "embed_tokens", scale: Double? = nil) {
        self.vocabulary = vocabulary
        self.width = width
        self.key = key
        self.scale = scale
    }
}

/// Adds an input position vector to every token (`inputAdditive` kind): learned or sinusoidal.
public struct PositionEmbedding: Sendable, Hashable, Codable {
    /// Which table is added.
    public var encoding: InputPositionEncoding
    /// Checkpoint name of a learned table (unused for sinusoidal).
    public var key: String

    /// - Parameters:
    ///   - encoding: `.learned(rows:offset:)` or `.sinusoidal(_:)`.
    ///   - key: checkpoint name of a learned table, without `.weight`.
    public init(_ encoding: InputPositionEncoding, key: String = "embed_positions") {
        self.encoding = encoding
        self.key = key
    }
}

/// A bias-optional linear map `y = x Wᵀ + b` that changes the residual width (OPT's `project_in`).
public struct Linear: Sendable, Hashable, Codable {
    /// Input width.
    public var input: Int
    /// Output width.
    public var output: Int
    /// Whether a bias vector `[output]` is present.
    public var bias: Bool
    /// Checkpoint name.
    public var key: String
    /// How the weight is stored.
    public var layout: WeightLayout

    /// - Parameters:
    ///   - input: width read.
    ///   - output: width written.
    ///   - bias: whether a `[output]` bias exists.
    ///   - key: checkpoint name.
    ///   - layout: `.outIn` (PyTorch `nn.Linear`, `[out, in]`) or `.inOut` (GPT-2 `Conv1D`, `[in, out]`).
    public init(input: Int, output: Int, bias: Bool = false, key: String, layout: WeightLayout = .outIn) {
        self.input = input
        self.output = output
        self.bias = bias
        self.key = key
        self.layout = layout
    }
}

/// Layer normalisation: `y = (x − mean) / sqrt(var + eps) · γ (+ β)`.
public struct LayerNorm: Sendable, Hashable, Codable {
    /// Normalised width `C`.
    public var width: Int
    /// Epsilon inside the square root.
    public var epsilon: Double
    /// Whether the learned shift `β` exists (MPT has none).
    public var bias: Bool
    /// Whether the learned scale `γ` exists (OPT's `layer_norm_elementwise_affine = false` has none).
    public var affine: Bool
    /// Checkpoint name.
    public var key: String

    /// - Parameters:
    ///   - width: the residual width it normalises.
    ///   - epsilon: added to the variance.
    ///   - bias: whether `β` exists.
    ///   - affine: whether `γ` (and `β`) exist at all.
    ///   - key: checkpoint name.
    public init(_ width: Int, epsilon: Double = 1e-5, bias: Bool = true, affine: Bool = true, key: String = "norm") {
        self.width = width
        self.epsilon = epsilon
        self.bias = bias
        self.affine = affine
        self.key = key
    }
}

/// RMS normalisation (Llama): `y = x / sqrt(mean(x²) + eps) · γ`.
public struct RMSNorm: Sendable, Hashable, Codable {
    /// Normalised width `C`.
    public var width: Int
    /// Epsilon inside the square root.
    public var epsilon: Double
    /// Checkpoint name.
    public var key: String
    /// Added to the stored gain before it multiplies (Gemma stores `w` and scales by `1 + w`); `nil`: none.
    public var gainOffset: Double?

    /// - Parameters:
    ///   - width: the residual width it normalises.
    ///   - epsilon: added to the mean square.
    ///   - key: checkpoint name.
    ///   - gainOffset: added to the stored gain (Gemma: 1), or `nil`.
    public init(_ width: Int, epsilon: Double = 1e-6, key: String = "norm", gainOffset: Double? = nil) {
        self.width = width
        self.epsilon = epsilon
        self.key = key
        self.gainOffset = gainOffset
    }
}

/// Nonlinearity of a feed-forward block.
public enum Activation: String, Sendable, Hashable, Codable, CaseIterable {
    /// Exact GELU, `x · Φ(x)` (PyTorch `gelu`, GPT-NeoX, MPT).
    case gelu
    /// Tanh-approximated GELU (GPT-2 `gelu_new`, BLOOM, `gelu_pytorch_tanh`).
    case geluTanh
    /// `max(0, x)` (OPT).
    case relu
    /// `x · σ(x)` (Llama's SwiGLU gate).
    case silu
}

/// Position-wise MLP: `down(act(up(x)))`, or gated `down(act(gate(x)) ⊙ up(x))` (SwiGLU/GeGLU).
public struct FeedForward: Sendable, Hashable, Codable {
    /// Hidden width `F`.
    public var hidden: Int
    /// Nonlinearity.
    public var activation: Activation
    /// Whether a gate projection multiplies the activation (SwiGLU = silu + gated, GeGLU = gelu + gated).
    public var gated: Bool
    /// Whether projections carry biases.
    public var bias: Bool
    /// Scope of the block's tensors (empty: the enclosing scope, as in OPT's `fc1`/`fc2`).
    public var key: String
    /// Names of the projections inside `key`.
    public var names: FeedForwardNames
    /// How projection weights are stored.
    public var layout: WeightLayout

    /// - Parameters:
    ///   - hidden: the hidden width `F`.
    ///   - activation: the nonlinearity.
    ///   - gated: whether a gate projection exists.
    ///   - bias: whether projections carry biases.
    ///   - key: scope of the block's tensors.
    ///   - names: projection names (defaults: `up_proj`, `down_proj`, `gate_proj`).
    ///   - layout: `.outIn` or `.inOut` (GPT-2).
    public init(
        hidden: Int, activation: Activation = .gelu, gated: Bool = false, bias: Bool = true, key: String = "mlp",
        names: FeedForwardNames = FeedForwardNames(), layout: WeightLayout = .outIn
    ) {
        self.hidden = hidden
        self.activation = activation
        self.gated = gated
        self.bias = bias
        self.key = key
        self.names = names
        self.layout = layout
    }
}

/// Checkpoint names of a feed-forward block's projections.
public struct FeedForwardNames: Sendable, Hashable, Codable {
    /// Width-expanding projection `[F, C]`.
    public var up: String
    /// Width-restoring projection `[C, F]`.
    public var down: String
    /// Gate projection `[F, C]`, used when the block is gated.
    public var gate: String
    /// When set (and the block is gated), gate and up are one `[2F, C]` matrix of this name, the gate's rows
    /// first (Phi-3's `gate_up_proj`, split in half as `chunk(2)` does); `gate` and `up` are then not read.
    public var gateUp: String?

    /// - Parameters: the projection names; `gateUp` for a fused gate and up projection.
    public init(up: String = "up_proj", down: String = "down_proj", gate: String = "gate_proj", gateUp: String? = nil) {
        self.up = up
        self.down = down
        self.gate = gate
        self.gateUp = gateUp
    }
}

/// Final projection to vocabulary logits, `[V, C]`; tied reuses the token embedding table.
public struct Unembedding: Sendable, Hashable, Codable {
    /// Whether the token embedding table is reused (no tensor of its own).
    public var tied: Bool
    /// Whether a `[V]` bias exists.
    public var bias: Bool
    /// Checkpoint name when untied.
    public var key: String
    /// Soft cap of the logits, `cap · tanh(logit / cap)` before the softmax (Gemma 2's final_logit_softcapping).
    public var softcap: Double?

    /// - Parameters:
    ///   - tied: reuse the token embedding table.
    ///   - bias: whether a `[V]` bias exists.
    ///   - key: checkpoint name when untied.
    ///   - softcap: the logits' soft cap, or `nil`.
    public init(tied: Bool, bias: Bool = false, key: String = "lm_head", softcap: Double? = nil) {
        self.tied = tied
        self.bias = bias
        self.key = key
        self.softcap = softcap
    }
}

/// How a projection's weight matrix is stored in the checkpoint.
public enum WeightLayout: String, Sendable, Hashable, Codable {
    /// `[out, in]`, PyTorch `nn.Linear`.
    case outIn
    /// `[in, out]`, GPT-2's `Conv1D` (the engine transposes once at load).
    case inOut
}
