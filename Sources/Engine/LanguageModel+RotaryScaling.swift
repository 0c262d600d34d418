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
        architecture = architecture.mappingLeaves { layer in
            guard case .attention(var node) = layer, case .rotary(var rotary) = node.position else { return layer }
            rotary.scaling = scaling(rotary)
            node.position = .rotary(rotary)
            return .attention(node)
        }
        return LanguageModel(
            architecture: architecture, location: location, vocabulary: vocabulary,
            parameterCount: parameterCount, bound: mapped)
    }
}
