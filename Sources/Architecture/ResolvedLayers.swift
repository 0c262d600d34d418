// The architecture as the engine runs it: repeats unrolled, every leaf with its resolved checkpoint
// tensors and the residual width it reads. Names come from the same code as the parameter manifest,
// so what the engine binds is exactly what `inspect` prints.

/// A node of the unrolled architecture.
public indirect enum ResolvedLayer: Sendable, Hashable {
    /// A leaf node (embedding, norm, attention, …).
    case leaf(ResolvedLeaf)
    /// `x ← x + f(x)` (pre) or `x ← norm(x + f(x))` (post, the norm is the body's last leaf).
    case residual(NormPlacement, [ResolvedLayer])
    /// `x ← x + Σ branchₖ(x)`.
    case parallel([[ResolvedLayer]])
}

/// A leaf node with its tensors resolved.
public struct ResolvedLeaf: Sendable, Hashable {
    /// The node.
    public var layer: Layer
    /// Its tensors, in this order:
    /// - `tokenEmbedding`: table. `positionEmbedding`: learned table, or nothing.
    /// - `linear`: weight, bias?. `layerNorm`: (γ, β?) if affine. `rmsNorm`: γ.
    /// - `attention`: fused: qkv weight, qkv bias?, output weight, output bias?; separate: q, q bias?, k, k bias?,
    ///   v, v bias?, output, output bias?; then position tensors (T5 table; KERPLE r1, r2; FIRE mlp.0 weight,
    ///   mlp.0 bias, mlp.2 weight, mlp.2 bias, c, threshold_multiplier).
    /// - `feedForward`: gate weight, gate bias? (if gated), up weight, up bias?, down weight, down bias?.
    /// - `unembedding`: weight, bias? when untied; nothing when tied.
    public var tensors: [TensorSpec]
    /// Residual width the node reads.
    public var width: Int
    /// Vocabulary of the token embedding above it.
    public var vocabulary: Int?
    /// Readable location for messages.
    public var location: String
}

extension Architecture {
    /// The unrolled architecture with resolved tensor names (validate first; widths of invalid ones may be 0).
    public var resolvedLayers: [ResolvedLayer] {
        var context = WalkContext()
        return Self.resolve(layers, context: &context)
    }

    private static func resolve(_ layers: [Layer], context: inout WalkContext) -> [ResolvedLayer] {
        let base = context.location
        var result: [ResolvedLayer] = []
        for (index, layer) in layers.enumerated() {
            context.location = "\(base)[\(index)]"
            switch layer {
            case .repeated(let node):
                for n in 0..<max(node.count, 0) {
                    var child = context.descending(into: node.key, location: ".repeat")
                    child.scope.append(String(n))
                    child.location += "[\(n)]"
                    result += resolve(node.body, context: &child)
                    context.width = child.width
                }
            case .residual(let node):
                var child = context.descending(into: node.key, location: ".residual")
                result.append(.residual(node.placement, resolve(node.body, context: &child)))
            case .parallelResidual(let node):
                let child = context.descending(into: node.key, location: ".parallel")
                let branches = node.branches.enumerated().map { index, branch in
                    var branchContext = child
                    branchContext.location += ".branch[\(index)]"
                    return resolve(branch, context: &branchContext)
                }
                result.append(.parallel(branches))
            case .branch(let body):
                var child = context.descending(into: "", location: ".branch")
                result.append(.parallel([resolve(body, context: &child)]))
            default:
                let leaf = ResolvedLeaf(
                    layer: layer, tensors: tensors(of: layer, context: context),
                    width: context.width ?? 0, vocabulary: context.vocabulary,
                    location: context.location)
                result.append(.leaf(leaf))
                if case .tokenEmbedding(let node) = layer {
                    context.width = node.width
                    context.embeddingWidth = node.width
                    context.vocabulary = node.vocabulary
                }
                if case .linear(let node) = layer { context.width = node.output }
            }
        }
        context.location = base
        return result
    }
}
