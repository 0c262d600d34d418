// One node of an architecture. The JSON form is `{"type": "<case>", …fields of the node…}`;
// `Docs/architecture-json.md` documents it and tests pin it.

/// A node of the architecture tree.
public enum Layer: Sendable, Hashable {
    /// Token embedding lookup.
    case tokenEmbedding(TokenEmbedding)
    /// Input-added positions (learned or sinusoidal).
    case positionEmbedding(PositionEmbedding)
    /// A width-changing linear map.
    case linear(Linear)
    /// Layer normalisation.
    case layerNorm(LayerNorm)
    /// RMS normalisation.
    case rmsNorm(RMSNorm)
    /// Causal self-attention.
    case attention(Attention)
    /// Feed-forward block.
    case feedForward(FeedForward)
    /// Projection to vocabulary logits.
    case unembedding(Unembedding)
    /// A repeated body.
    indirect case repeated(Repeat)
    /// A residual connection around a sequential body.
    indirect case residual(Residual)
    /// A parallel residual with several branches.
    indirect case parallelResidual(ParallelResidual)
    /// A branch of a parallel residual (only meaningful inside one).
    indirect case branch([Layer])

    /// The `type` tag of the JSON form.
    public var typeName: String {
        switch self {
        case .tokenEmbedding: "tokenEmbedding"
        case .positionEmbedding: "positionEmbedding"
        case .linear: "linear"
        case .layerNorm: "layerNorm"
        case .rmsNorm: "rmsNorm"
        case .attention: "attention"
        case .feedForward: "feedForward"
        case .unembedding: "unembedding"
        case .repeated: "repeat"
        case .residual: "residual"
        case .parallelResidual: "parallelResidual"
        case .branch: "branch"
        }
    }
}

extension Layer: Codable {
    private enum TypeKey: String, CodingKey { case type, body }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: TypeKey.self)
        let type = try container.decode(String.self, forKey: .type)
        switch type {
        case "tokenEmbedding": self = .tokenEmbedding(try TokenEmbedding(from: decoder))
        case "positionEmbedding": self = .positionEmbedding(try PositionEmbedding(from: decoder))
        case "linear": self = .linear(try Linear(from: decoder))
        case "layerNorm": self = .layerNorm(try LayerNorm(from: decoder))
        case "rmsNorm": self = .rmsNorm(try RMSNorm(from: decoder))
        case "attention": self = .attention(try Attention(from: decoder))
        case "feedForward": self = .feedForward(try FeedForward(from: decoder))
        case "unembedding": self = .unembedding(try Unembedding(from: decoder))
        case "repeat": self = .repeated(try Repeat(from: decoder))
        case "residual": self = .residual(try Residual(from: decoder))
        case "parallelResidual": self = .parallelResidual(try ParallelResidual(from: decoder))
        case "branch": self = .branch(try container.decode([Layer].self, forKey: .body))
        default:
            throw DecodingError.dataCorruptedError(
                forKey: .type, in: container,
                debugDescription: "unknown layer type '\(type)'; known: tokenEmbedding, positionEmbedding, linear, "
                    + "layerNorm, rmsNorm, attention, feedForward, unembedding, repeat, residual, parallelResidual, branch"
            )
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: TypeKey.self)
        try container.encode(typeName, forKey: .type)
        switch self {
        case .tokenEmbedding(let node): try node.encode(to: encoder)
        case .positionEmbedding(let node): try node.encode(to: encoder)
        case .linear(let node): try node.encode(to: encoder)
        case .layerNorm(let node): try node.encode(to: encoder)
        case .rmsNorm(let node): try node.encode(to: encoder)
        case .attention(let node): try node.encode(to: encoder)
        case .feedForward(let node): try node.encode(to: encoder)
        case .unembedding(let node): try node.encode(to: encoder)
        case .repeated(let node): try node.encode(to: encoder)
        case .residual(let node): try node.encode(to: encoder)
        case .parallelResidual(let node): try node.encode(to: encoder)
        case .branch(let body): try container.encode(body, forKey: .body)
        }
    }
}
