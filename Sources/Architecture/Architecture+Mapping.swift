extension Architecture {
    /// The same architecture with every leaf layer (not `Repeat`, `Residual`, `ParallelResidual` or a branch, which
    /// are walked into) replaced by `transform(leaf)`: how an importer or an experiment edits one kind of node
    /// wherever it sits.
    public func mappingLeaves(_ transform: (Layer) -> Layer) -> Architecture {
        var copy = self
        copy.layers = Self.mapLeaves(layers, transform)
        return copy
    }

    static func mapLeaves(_ layers: [Layer], _ transform: (Layer) -> Layer) -> [Layer] {
        layers.map { layer in
            switch layer {
            case .repeated(var node): node.body = mapLeaves(node.body, transform); return .repeated(node)
            case .residual(var node): node.body = mapLeaves(node.body, transform); return .residual(node)
            case .parallelResidual(var node):
                node.branches = node.branches.map { mapLeaves($0, transform) }
                return .parallelResidual(node)
            case .branch(let body): return .branch(mapLeaves(body, transform))
            default: return transform(layer)
            }
        }
    }
}
