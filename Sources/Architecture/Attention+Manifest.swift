// The tensors of an attention layer: projections (fused or separate) and the learned parameters of
// its position method (T5 table, KERPLE r1/r2, FIRE's MLP).

extension Architecture {
    static func attentionTensors(_ node: Attention, context: WalkContext) -> [TensorSpec] {
        let width = context.width ?? 0
        let hs = node.resolvedHeadWidth(residualWidth: width)
        let (h, kv) = (node.heads, node.resolvedKVHeads)
        let scope = context.descending(into: node.key, location: "")
        func spec(_ name: String, _ shape: [Int], _ layout: TensorLayout) -> TensorSpec {
            TensorSpec(name: name, shape: shape, layout: layout)
        }
        func stored(out: Int, input: Int) -> [Int] { node.layout == .outIn ? [out, input] : [input, out] }
        func projection(_ key: String, out: Int, input: Int, bias: Bool, layout: TensorLayout) -> [TensorSpec] {
            let weight = spec(scope.name(key, "weight"), stored(out: out, input: input), layout)
            return bias ? [weight, spec(scope.name(key, "bias"), [out], .vector)] : [weight]
        }
        var tensors: [TensorSpec] = []
        let outputBias = node.outputBias ?? node.bias
        switch node.projections {
        case .fused(let qkv, let output, let packing):
            tensors += projection(
                qkv, out: (h + 2 * kv) * hs, input: width, bias: node.bias,
                layout: .fusedQKV(node.layout, packing))
            tensors += projection(output, out: width, input: h * hs, bias: outputBias, layout: .matrix(node.layout))
        case .separate(let query, let key, let value, let output):
            tensors += projection(query, out: h * hs, input: width, bias: node.bias, layout: .matrix(node.layout))
            tensors += projection(key, out: kv * hs, input: width, bias: node.bias, layout: .matrix(node.layout))
            tensors += projection(value, out: kv * hs, input: width, bias: node.bias, layout: .matrix(node.layout))
            tensors += projection(output, out: width, input: h * hs, bias: outputBias, layout: .matrix(node.layout))
        }
        if let norm = node.queryKeyNorm {
            let (query, key) = norm.scope == .head ? (hs, hs) : (h * hs, kv * hs)
            tensors.append(spec(scope.name(norm.queryKey, "weight"), [query], .vector))
            tensors.append(spec(scope.name(norm.keyKey, "weight"), [key], .vector))
        }
        return tensors + positionTensors(node.position, heads: h, scope: scope)
    }

    static func positionTensors(_ position: AttentionPosition, heads h: Int, scope: WalkContext) -> [TensorSpec] {
        switch position {
        case .t5(let t5):
            let name = t5.shared ? "\(t5.key).weight" : scope.name(t5.key, "weight")
            return [TensorSpec(name: name, shape: [t5.buckets, h], layout: .biasTable)]
        case .kerple:
            return ["r1", "r2"].map { TensorSpec(name: scope.name("kerple", $0), shape: [h], layout: .vector) }
        case .fire(let fire):
            return [
                TensorSpec(name: scope.name("fire", "mlp.0.weight"), shape: [fire.hidden, 1], layout: .matrix(.outIn)),
                TensorSpec(name: scope.name("fire", "mlp.0.bias"), shape: [fire.hidden], layout: .vector),
                TensorSpec(name: scope.name("fire", "mlp.2.weight"), shape: [h, fire.hidden], layout: .matrix(.outIn)),
                TensorSpec(name: scope.name("fire", "mlp.2.bias"), shape: [h], layout: .vector),
                TensorSpec(name: scope.name("fire", "c"), shape: [1], layout: .vector),
                TensorSpec(name: scope.name("fire", "threshold_multiplier"), shape: [1], layout: .vector),
            ]
        case .none, .rotary, .xpos, .alibi, .sandwich:
            return []
        }
    }
}
