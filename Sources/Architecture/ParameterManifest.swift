// Every tensor an architecture expects in a checkpoint — name, stored shape, layout — computed from the
// declaration alone. The engine binds against it; `extrapolate inspect` prints it.

/// How a tensor is stored and what it is.
public enum TensorLayout: Sendable, Hashable, Codable, CustomStringConvertible {
    /// A lookup table `[rows, width]`.
    case embedding
    /// A projection matrix in the given layout.
    case matrix(WeightLayout)
    /// A fused q/k/v projection: layout and row packing.
    case fusedQKV(WeightLayout, QKVPacking)
    /// A vector (bias, norm scale, per-head parameter).
    case vector
    /// A learned bias table `[buckets, heads]`.
    case biasTable

    public var description: String {
        switch self {
        case .embedding: "embedding"
        case .matrix(let layout): "matrix \(layout == .outIn ? "[out,in]" : "[in,out]")"
        case .fusedQKV(let layout, let packing):
            "fused qkv \(layout == .outIn ? "[out,in]" : "[in,out]"), \(packing.rawValue)"
        case .vector: "vector"
        case .biasTable: "bias table"
        }
    }
}

/// One tensor of the manifest.
public struct TensorSpec: Sendable, Hashable, Codable {
    /// Checkpoint name (`transformer.h.0.attn.c_attn.weight`).
    public var name: String
    /// Shape as stored in the checkpoint.
    public var shape: [Int]
    /// Layout and role.
    public var layout: TensorLayout

    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }
}

/// The ordered list of tensors an architecture expects.
public struct ParameterManifest: Sendable, Hashable, Codable {
    /// Tensors in declaration order, each name once.
    public var tensors: [TensorSpec]
    /// Names declared twice with different shapes (reported by validation).
    public var conflicts: [String]

    /// Total parameter count.
    public var parameterCount: Int { tensors.reduce(0) { $0 + $1.count } }

    /// The tensor named `name`, if any.
    public subscript(name: String) -> TensorSpec? { tensors.first { $0.name == name } }
}

extension Architecture {
    /// The parameter manifest, computed without weights. Widths that are not yet known (invalid
    /// architectures) show as 0; call `validate()` for the reasons.
    public var manifest: ParameterManifest {
        var tensors: [TensorSpec] = []
        var seen: [String: [Int]] = [:]
        var conflicts: [String] = []
        func add(_ name: String, _ shape: [Int], _ layout: TensorLayout) {
            if let previous = seen[name] {
                if previous != shape, !conflicts.contains(name) { conflicts.append(name) }
                return
            }
            seen[name] = shape
            tensors.append(TensorSpec(name: name, shape: shape, layout: layout))
        }
        _ = Walk.visit(layers, expandRepeats: true) { visit in
            for spec in Self.tensors(of: visit.layer, context: visit.context) {
                add(spec.name, spec.shape, spec.layout)
            }
        }
        return ParameterManifest(tensors: tensors, conflicts: conflicts)
    }

    /// The tensors one leaf node owns.
    static func tensors(of layer: Layer, context: WalkContext) -> [TensorSpec] {
        let width = context.width ?? 0
        func spec(_ name: String, _ shape: [Int], _ layout: TensorLayout) -> TensorSpec {
            TensorSpec(name: name, shape: shape, layout: layout)
        }
        func matrix(_ key: String, out: Int, in input: Int, _ layout: WeightLayout) -> TensorSpec {
            spec(context.name(key, "weight"), layout == .outIn ? [out, input] : [input, out], .matrix(layout))
        }
        switch layer {
        case .tokenEmbedding(let node):
            return [spec(context.name(node.key, "weight"), [node.vocabulary, node.width], .embedding)]
        case .positionEmbedding(let node):
            guard case .learned(let rows, _) = node.encoding else { return [] }
            return [spec(context.name(node.key, "weight"), [rows, width], .embedding)]
        case .linear(let node):
            let weight = matrix(node.key, out: node.output, in: node.input, node.layout)
            return node.bias ? [weight, spec(context.name(node.key, "bias"), [node.output], .vector)] : [weight]
        case .layerNorm(let node):
            guard node.affine else { return [] }
            let scale = spec(context.name(node.key, "weight"), [node.width], .vector)
            return node.bias ? [scale, spec(context.name(node.key, "bias"), [node.width], .vector)] : [scale]
        case .rmsNorm(let node):
            return [spec(context.name(node.key, "weight"), [node.width], .vector)]
        case .attention(let node):
            return attentionTensors(node, context: context)
        case .feedForward(let node):
            let scope = context.descending(into: node.key, location: "")
            var names = [(node.names.up, node.hidden, width)]
            if node.gated { names.insert((node.names.gate, node.hidden, width), at: 0) }
            if node.gated, let fused = node.names.gateUp { names = [(fused, 2 * node.hidden, width)] }
            names.append((node.names.down, width, node.hidden))
            return names.flatMap { key, out, input in
                let weight = spec(
                    scope.name(key, "weight"), node.layout == .outIn ? [out, input] : [input, out],
                    .matrix(node.layout))
                return node.bias ? [weight, spec(scope.name(key, "bias"), [out], .vector)] : [weight]
            }
        case .unembedding(let node):
            guard !node.tied else { return [] }
            let weight = spec(context.name(node.key, "weight"), [context.vocabulary ?? 0, width], .matrix(.outIn))
            return node.bias
                ? [weight, spec(context.name(node.key, "bias"), [context.vocabulary ?? 0], .vector)] : [weight]
        case .repeated, .residual, .parallelResidual, .branch:
            return []
        }
    }
}
