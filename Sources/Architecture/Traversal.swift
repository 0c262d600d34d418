// One walk over the tree, shared by the parameter manifest, validation and the printed tree, so
// that checkpoint scopes and the running residual width are computed in exactly one place.

/// Where the walk is: checkpoint scope, residual width, and a readable location for messages.
struct WalkContext {
    /// Checkpoint name components of the enclosing scopes.
    var scope: [String] = []
    /// Residual width at this point, once a token embedding (or linear map) has set it.
    var width: Int?
    /// Width of the token embedding table (for tied unembedding).
    var embeddingWidth: Int?
    /// Vocabulary of the token embedding.
    var vocabulary: Int?
    /// A readable path for error messages (`layers[1].repeat.residual[0].attention`).
    var location: String = "layers"
    /// Nesting depth (for the printed tree).
    var depth = 0
    /// Whether the walk is inside a `ParallelResidual`.
    var insideParallel = false

    /// The full checkpoint name of `leaf` in this scope.
    func name(_ components: String...) -> String {
        (scope + components).filter { !$0.isEmpty }.joined(separator: ".")
    }

    /// A child context one level down.
    func descending(into key: String, location suffix: String) -> WalkContext {
        var child = self
        if !key.isEmpty { child.scope.append(key) }
        child.location += suffix
        child.depth += 1
        return child
    }
}

/// What a walk visitor sees: a node and its context, before any width change the node makes.
struct WalkVisit {
    let layer: Layer
    let context: WalkContext
    /// For a repeat, the iteration being visited (the walk visits a repeat node once, then its bodies).
    let iteration: Int?
}

enum Walk {
    /// Visits every node in order, depth first, tracking scope and width.
    /// - Parameters:
    ///   - layers: the nodes.
    ///   - expandRepeats: visit every iteration of a `Repeat` (manifest) or only the first (validation).
    ///   - visit: called for each node; returns nothing, collects what it needs.
    static func visit(
        _ layers: [Layer], context: WalkContext = WalkContext(), expandRepeats: Bool,
        _ visit: (WalkVisit) -> Void
    ) -> WalkContext {
        var context = context
        let base = context.location
        for (index, layer) in layers.enumerated() {
            context.location = "\(base)[\(index)]"
            visit(WalkVisit(layer: layer, context: context, iteration: nil))
            context = descend(layer, context: context, expandRepeats: expandRepeats, visit)
        }
        context.location = base
        return context
    }

    /// Recurses into composites and returns the context after the node (its width change applied).
    private static func descend(
        _ layer: Layer, context: WalkContext, expandRepeats: Bool, _ visit: (WalkVisit) -> Void
    ) -> WalkContext {
        var context = context
        switch layer {
        case .tokenEmbedding(let node):
            context.width = node.width
            context.embeddingWidth = node.width
            context.vocabulary = node.vocabulary
        case .linear(let node):
            context.width = node.output
        case .repeated(let node):
            let iterations = expandRepeats ? max(node.count, 0) : min(max(node.count, 0), 1)
            var after = context
            for n in 0..<iterations {
                var child = after.descending(into: node.key, location: ".repeat")
                child.scope.append(String(n))
                let end = Self.visit(node.body, context: child, expandRepeats: expandRepeats, visit)
                after.width = end.width
            }
            context.width = after.width
        case .residual(let node):
            let child = context.descending(into: node.key, location: ".residual")
            _ = Self.visit(node.body, context: child, expandRepeats: expandRepeats, visit)
        case .parallelResidual(let node):
            var child = context.descending(into: node.key, location: ".parallel")
            child.insideParallel = true
            for (index, branch) in node.branches.enumerated() {
                var branchContext = child
                branchContext.location += ".branch[\(index)]"
                _ = Self.visit(branch, context: branchContext, expandRepeats: expandRepeats, visit)
            }
        case .branch(let body):
            let child = context.descending(into: "", location: ".branch")
            _ = Self.visit(body, context: child, expandRepeats: expandRepeats, visit)
        case .positionEmbedding, .layerNorm, .rmsNorm, .attention, .feedForward, .unembedding:
            break
        }
        return context
    }
}
