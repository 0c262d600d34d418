// Composite nodes: repetition and residual connections. Their bodies are `[Layer]` built by
// `ArchitectureBuilder`, so `if`, `for` and plain sequences work inside them.

/// Repeats its body `count` times; iteration `n` names its tensors under `key.n`.
public struct Repeat: Sendable, Hashable, Codable {
    /// Number of repetitions.
    public var count: Int
    /// Scope prefix; iteration `n` uses `key.n` (`transformer.h.0`, …).
    public var key: String
    /// The repeated layers.
    public var body: [Layer]

    /// - Parameters:
    ///   - count: number of repetitions (layers).
    ///   - key: checkpoint scope; iteration `n` is `key.n`.
    ///   - body: the layers of one repetition.
    public init(_ count: Int, key: String = "layers", @ArchitectureBuilder _ body: () -> [Layer]) {
        self.count = count
        self.key = key
        self.body = body()
    }
}

/// Where a residual block normalises.
public enum NormPlacement: String, Sendable, Hashable, Codable {
    /// `x ← x + f(x)`; any norm is the first layer of `f` (GPT-2, Llama).
    case pre
    /// `x ← norm(x + f(x))`; the body's last layer must be the norm (OPT-350m, original Transformer).
    case post
}

/// A residual connection around a sequential body.
public struct Residual: Sendable, Hashable, Codable {
    /// Pre- or post-normalisation.
    public var placement: NormPlacement
    /// Optional scope added to the names inside.
    public var key: String
    /// The sequential body `f`.
    public var body: [Layer]

    /// - Parameters:
    ///   - placement: `.pre` (`x + f(x)`) or `.post` (`norm(x + f(x))`, norm written last in the body).
    ///   - key: optional scope for the names inside (empty: none).
    ///   - body: the layers of `f`.
    public init(_ placement: NormPlacement = .pre, key: String = "", @ArchitectureBuilder _ body: () -> [Layer]) {
        self.placement = placement
        self.key = key
        self.body = body()
    }
}

/// Parallel residual (GPT-NeoX, GPT-J): `x ← x + Σ branchₖ(x)`, each branch sequential.
public struct ParallelResidual: Sendable, Hashable, Codable {
    /// Optional scope added to the names inside.
    public var key: String
    /// The branches, each a sequence of layers reading the same `x`.
    public var branches: [[Layer]]

    /// - Parameters:
    ///   - key: optional scope for the names inside.
    ///   - branches: `Branch { … }` values; a bare layer is a branch of its own.
    public init(key: String = "", @ArchitectureBuilder _ branches: () -> [Layer]) {
        self.key = key
        self.branches = branches().map { layer in
            if case .branch(let body) = layer { return body }
            return [layer]
        }
    }
}

/// One branch of a `ParallelResidual`.
public struct Branch: Sendable, Hashable {
    /// The branch's layers.
    public var body: [Layer]

    /// - Parameter body: the branch's sequential layers.
    public init(@ArchitectureBuilder _ body: () -> [Layer]) { self.body = body() }
}
