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
        let model = LanguageModel(
            architecture: architecture, location: location, vocabulary: vocabulary,
            parameterCount: parameterCount, bound: mapped)
        model.trainedLength = trainedLength
        model.notes = notes
        model.recordedStep = recordedStep
        model.configAudit = configAudit
        return model
    }
}

extension LanguageModel {
    /// Whether a window's log-probabilities are exactly the first positions' of any longer window that starts with
    /// the same tokens: true when no position's computation depends on the window length. False for dynamic NTK and
    /// LongRoPE (their frequencies follow the length) and for xPos (its scale is centred on the window). Sweeps use
    /// it to take a shorter length's windows from a longer length's pass.
    public var scoresArePrefixStable: Bool {
        func stable(_ steps: [Step]) -> Bool {
            steps.allSatisfy { step in
                switch step {
                case .attention(let weights):
                    switch weights.position {
                    case .xpos: return false
                    case .rotary(let rotary):
                        switch rotary.scaling {
                        case .dynamic, .longRoPE: return false
                        default: return true
                        }
                    case .none, .alibi, .sandwich, .t5, .kerple, .fire: return true
                    }
                case .residual(_, let body): return stable(body)
                case .parallel(let branches): return branches.allSatisfy(stable)
                default: return true
                }
            }
        }
        return stable(bound.body)
    }
}
