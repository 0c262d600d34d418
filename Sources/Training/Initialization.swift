import Architecture
import Evaluation
import Foundation

/// Initial weights for an architecture, from a seed: GPT-2's scheme, which fairseq's `transformer_lm` (the paper's
/// code) and `Datasets/demo/train.py` share — every matrix N(0, 0.02²), the projections that write into the residual
/// stream (attention's output, the feed-forward's down) N(0, (0.02/√(2·layers))²), a scaled token embedding (fairseq's
/// `√C`) N(0, 1/C) and an unscaled one N(0, 0.02²), norm gains 1 (0 for a norm applying `1 + w`), biases 0, T5 tables
/// 0. KERPLE's r1 ~ U(0, 1) and r2 ~ U(0, 2) (`chijames/KERPLE`); FIRE's MLP as `nn.Linear` draws it
/// (U(±1/√fan_in)), c = 0.1 and the threshold multiplier 1 (Li et al. 2023).
public enum Initialization {
    /// One tensor per manifest entry, in manifest order, under the architecture's names and stored shapes.
    public static func weights(for architecture: Architecture, seed: UInt64) -> [(
        name: String, shape: [Int], values: [Float]
    )] {
        var random = SeededGenerator(seed: seed)
        var result: [(name: String, shape: [Int], values: [Float])] = []
        var seen: Set<String> = []
        let layers = architecture.resolvedLayers
        let attentionLayers = max(1, count(layers) { if case .attention = $0 { true } else { false } })
        let residualStd = 0.02 / (2 * Double(attentionLayers)).squareRoot()

        func add(_ spec: TensorSpec, _ value: (inout SeededGenerator) -> Double) {
            guard seen.insert(spec.name).inserted else { return }  // a shared tensor is drawn once
            result.append((spec.name, spec.shape, (0..<spec.count).map { _ in Float(value(&random)) }))
        }
        func normal(_ std: Double) -> (inout SeededGenerator) -> Double {
            { generator in
                // Box–Muller from two uniforms in (0, 1].
                let u1 = Double(generator.next() >> 11 + 1) / 9_007_199_254_740_992
                let u2 = Double(generator.next() >> 11) / 9_007_199_254_740_992
                return std * (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
            }
        }
        func uniform(_ low: Double, _ high: Double) -> (inout SeededGenerator) -> Double {
            { generator in low + (high - low) * Double(generator.next() >> 11) / 9_007_199_254_740_992 }
        }
        func constant(_ value: Double) -> (inout SeededGenerator) -> Double { { _ in value } }
        /// Matrices `0.02`, the last matrix of the leaf `residualStd` when it writes the residual stream; vectors 0.
        func projections(_ specs: [TensorSpec], outputFrom index: Int) {
            var matrices = 0
            for spec in specs {
                switch spec.layout {
                case .matrix, .fusedQKV:
                    add(spec, normal(matrices >= index ? residualStd : 0.02))
                    matrices += 1
                default: add(spec, constant(0))
                }
            }
        }

        func visit(_ layers: [ResolvedLayer]) {
            for layer in layers {
                switch layer {
                case .residual(_, let body): visit(body)
                case .parallel(let branches): branches.forEach(visit)
                case .leaf(let leaf): initialize(leaf)
                }
            }
        }
        func initialize(_ leaf: ResolvedLeaf) {
            let specs = leaf.tensors
            switch leaf.layer {
            case .tokenEmbedding(let node):
                let std = node.scale == nil ? 0.02 : 1 / Double(node.width).squareRoot()
                specs.forEach { add($0, normal(std)) }
            case .positionEmbedding:
                specs.forEach { add($0, normal(0.02)) }
            case .linear, .unembedding:
                projections(specs, outputFrom: .max)
            case .layerNorm:
                for (index, spec) in specs.enumerated() { add(spec, constant(index == 0 ? 1 : 0)) }
            case .rmsNorm(let node):
                specs.forEach { add($0, constant(node.gainOffset == nil ? 1 : 0)) }
            case .feedForward(let node):
                // gate?, up, down (each with a bias?): the down projection writes the residual stream.
                projections(specs, outputFrom: node.gated && node.names.gateUp == nil ? 2 : 1)
            case .attention(let node):
                // q/k/v (fused: one matrix; separate: three), each with a bias when `bias`; then the output
                // projection with its bias when `outputBias ?? bias`: the output writes the residual stream.
                let fused: Bool
                if case .fused = node.projections { fused = true } else { fused = false }
                let inputs = fused ? 1 : 3
                let projectionCount =
                    inputs * (node.bias ? 2 : 1) + ((node.outputBias ?? node.bias) ? 2 : 1)
                var rest = specs[projectionCount...]
                projections(Array(specs.prefix(projectionCount)), outputFrom: inputs)
                if node.queryKeyNorm != nil {
                    add(rest.removeFirst(), constant(1))
                    add(rest.removeFirst(), constant(1))
                }
                switch node.position {
                case .t5: rest.forEach { add($0, constant(0)) }
                case .kerple:
                    if let r1 = rest.popFirst() { add(r1, uniform(0, 1)) }
                    if let r2 = rest.popFirst() { add(r2, uniform(0, 2)) }
                case .fire(let fire):
                    let parts = Array(rest)
                    guard parts.count == 6 else { return parts.forEach { add($0, constant(0)) } }
                    let bound1 = 1.0, bound2 = 1 / Double(fire.hidden).squareRoot()  // fan_in 1, then hidden
                    add(parts[0], uniform(-bound1, bound1))
                    add(parts[1], uniform(-bound1, bound1))
                    add(parts[2], uniform(-bound2, bound2))
                    add(parts[3], uniform(-bound2, bound2))
                    add(parts[4], constant(0.1))
                    add(parts[5], constant(1))
                default: rest.forEach { add($0, constant(0)) }
                }
            default:
                specs.forEach { add($0, constant(0)) }
            }
        }
        visit(layers)
        return result
    }

    private static func count(_ layers: [ResolvedLayer], where predicate: (Layer) -> Bool) -> Int {
        layers.reduce(0) { total, layer in
            switch layer {
            case .leaf(let leaf): total + (predicate(leaf.layer) ? 1 : 0)
            case .residual(_, let body): total + count(body, where: predicate)
            case .parallel(let branches): total + branches.reduce(0) { $0 + count($1, where: predicate) }
            }
        }
    }
}
