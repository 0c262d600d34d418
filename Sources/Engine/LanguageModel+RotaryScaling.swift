import Architecture

extension LanguageModel {
    /// The same weights with every rotary layer's inference-time extension replaced (for sweeps that compare
    /// linear, NTK, dynamic, YaRN and llama3 scaling). `nil` when the model has no rotary layer.
    public func replacingRotaryScaling(_ scaling: (Rotary) -> RotaryScaling) -> LanguageModel? {
        var found = false
        func map(_ steps: [Step]) -> [Step] {
            steps.map { step in
                switch step {
                case .attention(var weights):
                    if case .rotary(var rotary) = weights.position {
                        rotary.scaling = scaling(rotary)
                        weights.position = .rotary(rotary)
                        weights.node.position = .rotary(rotary)
                        found = true
                    }
                    return .attention(weights)
                case .residual(let placement, let body): return .residual(placement, map(body))
                case .parallel(let branches): return .parallel(branches.map(map))
                default: return step
                }
            }
        }
        var mapped = bound
        mapped.body = map(bound.body)
        guard found else { return nil }
        var architecture = self.architecture
        architecture.layers = Self.mapRotary(architecture.layers, scaling)
        return LanguageModel(
            architecture: architecture, location: location, vocabulary: vocabulary,
            parameterCount: parameterCount, bound: mapped)
    }

    private static func mapRotary(_ layers: [Layer], _ scaling: (Rotary) -> RotaryScaling) -> [Layer] {
        layers.map { layer in
            switch layer {
            case .attention(var node):
                if case .rotary(var rotary) = node.position {
                    rotary.scaling = scaling(rotary); node.position = .rotary(rotary)
                }
                return .attention(node)
            case .repeated(var node): node.body = mapRotary(node.body, scaling); return .repeated(node)
            case .residual(var node): node.body = mapRotary(node.body, scaling); return .residual(node)
            case .parallelResidual(var node):
                node.branches = node.branches.map { mapRotary($0, scaling) }; return .parallelResidual(node)
            default: return layer
            }
        }
    }
}
