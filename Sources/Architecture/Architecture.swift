// The value every other part of Extrapolate passes around: a decoder-only transformer, declared
// with the DSL or imported from a Hugging Face `config.json`, stored and hashed by the daemon.

/// A decoder-only transformer architecture: a tree of `Layer`s plus the length it was trained at.
///
/// ```swift
/// let probe = Architecture("probe-alibi", trainedLength: 128) {
///     TokenEmbedding(vocabulary: 256, width: 256)
///     Repeat(4) {
///         Residual { LayerNorm(256, key: "ln_1"); Attention(heads: 8, position: .alibi()) }
///         Residual { LayerNorm(256, key: "ln_2"); FeedForward(hidden: 1024, activation: .gelu) }
///     }
///     LayerNorm(256, key: "ln_f")
///     Unembedding(tied: true)
/// }
/// ```
public struct Architecture: Sendable, Hashable, Codable {
    /// Version of the JSON form (`Docs/architecture-json.md`).
    public static let formatVersion = 1

    /// Version of the JSON form this value was decoded from or will encode as.
    public var formatVersion: Int
    /// A human name (`probe-alibi`, `gpt2`, …); not part of the content hash.
    public var name: String
    /// Sequence length the model was trained at, `L`; sweeps are multiples of it.
    public var trainedLength: Int
    /// The layers, first to last.
    public var layers: [Layer]

    /// Declares an architecture.
    /// - Parameters:
    ///   - name: a human name.
    ///   - trainedLength: the training sequence length `L`.
    ///   - layers: the DSL body.
    public init(_ name: String, trainedLength: Int, @ArchitectureBuilder layers: () -> [Layer]) {
        self.init(name: name, trainedLength: trainedLength, layers: layers())
    }

    /// Builds an architecture from already-built layers.
    public init(name: String, trainedLength: Int, layers: [Layer]) {
        self.formatVersion = Self.formatVersion
        self.name = name
        self.trainedLength = trainedLength
        self.layers = layers
    }
}
