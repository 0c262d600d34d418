/// The kind of a position method, by where it plugs in (spec §0).
public enum PositionKind: String, Sendable, Hashable, Codable {
    /// A vector added to token embeddings (learned, sinusoidal).
    case inputAdditive
    /// A transform of q and k in every layer (RoPE, xPos).
    case qkTransform
    /// A scalar per (head, i, j) added to logits (T5, ALiBi, KERPLE, FIRE, Sandwich).
    case logitBias
    /// Changes which keys are visible (sliding window).
    case maskShape
    /// No position information (NoPE).
    case none
}

/// The position method of an attention layer.
public enum AttentionPosition: Sendable, Hashable {
    /// NoPE: only the causal mask.
    case none
    /// Rotary embedding of q and k.
    case rotary(Rotary)
    /// xPos: rotary with a per-pair decay.
    case xpos(XPos)
    /// ALiBi linear biases.
    case alibi(ALiBi)
    /// T5 bucketed learned biases.
    case t5(T5Bias)
    /// KERPLE kernelised biases.
    case kerple(Kerple)
    /// FIRE functional biases.
    case fire(Fire)
    /// Sandwich parameter-free biases.
    case sandwich(Sandwich)

    /// ALiBi; `maxBias` is MPT's `alibi_bias_max`.
    public static func alibi(maxBias: Double? = nil) -> Self { .alibi(ALiBi(maxBias: maxBias)) }
    /// RoPE over a fraction of each head.
    public static func rotary(
        fraction: Double = 1, base: Double = 10000, layout: RotaryLayout = .halfSplit, scaling: RotaryScaling = .none
    ) -> Self { .rotary(Rotary(width: .fraction(fraction), base: base, layout: layout, scaling: scaling)) }
    /// RoPE over an absolute number of dimensions.
    public static func rotary(
        dimensions: Int, base: Double = 10000, layout: RotaryLayout = .halfSplit, scaling: RotaryScaling = .none
    ) -> Self { .rotary(Rotary(width: .count(dimensions), base: base, layout: layout, scaling: scaling)) }
    /// T5 bias.
    public static func t5(buckets: Int = 32, maxDistance: Int = 128, shared: Bool = true) -> Self {
        .t5(T5Bias(buckets: buckets, maxDistance: maxDistance, shared: shared))
    }

    /// Where the method plugs in.
    public var kind: PositionKind {
        switch self {
        case .none: .none
        case .rotary, .xpos: .qkTransform
        case .alibi, .t5, .kerple, .fire, .sandwich: .logitBias
        }
    }

    /// Short name used in reports (`nope`, `rotary`, `xpos`, `alibi`, `t5`, `kerple`, `fire`, `sandwich`).
    public var name: String {
        switch self {
        case .none: "nope"
        case .rotary: "rotary"
        case .xpos: "xpos"
        case .alibi: "alibi"
        case .t5: "t5"
        case .kerple: "kerple"
        case .fire: "fire"
        case .sandwich: "sandwich"
        }
    }
}

extension AttentionPosition: Codable {
    private enum Keys: String, CodingKey { case method, parameters }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        let method = try container.decode(String.self, forKey: .method)
        switch method {
        case "nope": self = .none
        case "rotary": self = .rotary(try container.decode(Rotary.self, forKey: .parameters))
        case "xpos": self = .xpos(try container.decode(XPos.self, forKey: .parameters))
        case "alibi": self = .alibi(try container.decode(ALiBi.self, forKey: .parameters))
        case "t5": self = .t5(try container.decode(T5Bias.self, forKey: .parameters))
        case "kerple": self = .kerple(try container.decode(Kerple.self, forKey: .parameters))
        case "fire": self = .fire(try container.decode(Fire.self, forKey: .parameters))
        case "sandwich": self = .sandwich(try container.decode(Sandwich.self, forKey: .parameters))
        default:
            throw DecodingError.dataCorruptedError(
                forKey: .method, in: container,
                debugDescription: "unknown position method '\(method)'; known: nope, rotary, xpos, alibi, t5, "
                    + "kerple, fire, sandwich")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(name, forKey: .method)
        switch self {
        case .none: break
        case .rotary(let p): try container.encode(p, forKey: .parameters)
        case .xpos(let p): try container.encode(p, forKey: .parameters)
        case .alibi(let p): try container.encode(p, forKey: .parameters)
        case .t5(let p): try container.encode(p, forKey: .parameters)
        case .kerple(let p): try container.encode(p, forKey: .parameters)
        case .fire(let p): try container.encode(p, forKey: .parameters)
        case .sandwich(let p): try container.encode(p, forKey: .parameters)
        }
    }
}
