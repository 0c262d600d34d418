import Architecture
import Checkpoints
import Kernels

// The way back from the bound form to the checkpoint's tensors, for values that live in the bound layout: the
// gradients of training (and the weights it updates). Binding copies, transposes, reorders and concatenates; each
// of those is a permutation of values, so going back is the inverse permutation, and a tensor bound in several
// places (a shared layer, T5's shared table) sums what each place holds, which is what a gradient needs. This
// walks the resolved layers in the order `Binder.bind` does, so the two directions read side by side.

/// A tensor in the checkpoint's own name, shape and layout.
package struct NamedTensor: @unchecked Sendable {
    package var name: String
    package var shape: [Int]
    package var values: FloatBuffer
}

extension BoundModel {
    /// A model of the same structure with every fp32 buffer replaced by a zeroed one of the same size: the shape of
    /// its gradient. A buffer bound in several places (a tied head and the embedding, a shared table) stays one
    /// buffer, so what each place adds to it is summed. `nil` when a matrix is held in 16 bits or packed (training
    /// works on fp32 weights).
    package func zeroedCopy() -> BoundModel? {
        var copies: [ObjectIdentifier: FloatBuffer] = [:]
        var ok = true
        func zero(_ buffer: FloatBuffer) -> FloatBuffer {
            if let copy = copies[ObjectIdentifier(buffer)] { return copy }
            let copy = FloatBuffer(count: buffer.count)
            copies[ObjectIdentifier(buffer)] = copy
            return copy
        }
        func zero(_ weights: Weights) -> Weights {
            guard case .float(let buffer) = weights else {
                ok = false
                return weights
            }
            return .float(zero(buffer))
        }
        func zero(_ p: Projection) -> Projection {
            Projection(weight: zero(p.weight), bias: p.bias.map(zero), input: p.input, output: p.output)
        }
        func zero(_ steps: [Step]) -> [Step] {
            steps.map { step in
                switch step {
                case .positions(let encoding, let table, let width):
                    return .positions(encoding, table: table.map(zero), width: width)
                case .linear(let p): return .linear(zero(p))
                case .layerNorm(let gamma, let beta, let epsilon, let width):
                    return .layerNorm(gamma: gamma.map(zero), beta: beta.map(zero), epsilon: epsilon, width: width)
                case .rmsNorm(let gamma, let epsilon, let width):
                    return .rmsNorm(gamma: zero(gamma), epsilon: epsilon, width: width)
                case .attention(var w):
                    w.qkv = zero(w.qkv)
                    w.output = zero(w.output)
                    w.queryKeyNorm = w.queryKeyNorm.map { norm in
                        var copy = norm
                        (copy.query, copy.key) = (zero(norm.query), zero(norm.key))
                        return copy
                    }
                    switch w.position {
                    case .none, .rotary, .xpos, .alibi, .sandwich: break
                    case .t5(let t5, let table): w.position = .t5(t5, table: zero(table))
                    case .kerple(let kerple, let r1, let r2): w.position = .kerple(kerple, r1: zero(r1), r2: zero(r2))
                    case .fire(let fire, let f):
                        w.position = .fire(
                            fire,
                            FireWeights(
                                w1: zero(f.w1), b1: zero(f.b1), w2: zero(f.w2), b2: zero(f.b2), c: zero(f.c),
                                multiplier: zero(f.multiplier)))
                    }
                    return .attention(w)
                case .feedForward(var w):
                    w.gate = w.gate.map(zero)
                    w.up = zero(w.up)
                    w.down = zero(w.down)
                    return .feedForward(w)
                case .residual(let placement, let body): return .residual(placement, zero(body))
                case .parallel(let branches): return .parallel(branches.map(zero))
                }
            }
        }
        var embedding = self.embedding
        embedding.table = zero(embedding.table)
        let copy = BoundModel(embedding: embedding, body: zero(body), head: zero(head), headSoftcap: headSoftcap)
        return ok ? copy : nil
    }

    /// The values of this bound model (weights, or gradients shaped like them) as the checkpoint's tensors: every
    /// tensor of `architecture`'s manifest, in its stored name (`rename`: the checkpoint's spelling of an
    /// architecture name), shape and layout. Places bound from one tensor are summed into it (gradients).
    /// `weights`: these are the weights themselves, so a norm bound as `offset + w` (Gemma's) is stored as `w`.
    package func namedTensors(
        of architecture: Architecture, weights: Bool = false, rename: (String) -> String = { $0 }
    ) -> [NamedTensor] {
        var unbinder = Unbinder()
        unbinder.weights = weights
        return namedTensors(of: architecture, into: &unbinder).map {
            NamedTensor(name: rename($0.name), shape: $0.shape, values: $0.values)
        }
    }

    private func namedTensors(of architecture: Architecture, into unbinder: inout Unbinder) -> [NamedTensor] {
        let layers = architecture.resolvedLayers
        guard case .leaf(let first)? = layers.first, case .leaf(let last)? = layers.last,
            case .unembedding(let unembedding) = last.layer
        else { return [] }
        if case .float(let table) = embedding.table { unbinder.add(first.tensors[0], table) }
        unbinder.unbind(Array(layers.dropFirst().dropLast()), body)
        if !unembedding.tied {
            var specs = last.tensors[...]
            unbinder.projection(&specs, head)
        }
        return unbinder.order.map { name in
            let (spec, values) = unbinder.tensors[name]!
            return NamedTensor(name: name, shape: spec.shape, values: values)
        }
    }
}

extension BoundModel {
    /// Tensors of the checkpoint bound to more than one buffer (a shared matrix transposed for each place that reads
    /// it): a sum for a gradient, but two copies that training would move apart.
    package func tensorsBoundApart(of architecture: Architecture) -> [String] {
        var unbinder = Unbinder()
        unbinder.identitiesOnly = true
        _ = namedTensors(of: architecture, into: &unbinder)
        return unbinder.order.filter { (unbinder.seen[$0]?.count ?? 0) > 1 }
    }
}

/// Collects the tensors of `BoundModel.namedTensors`, in manifest order.
private struct Unbinder {
    /// Whether the values are weights (not gradients): offsets added at binding are taken off again.
    var weights = false
    /// Only which bound buffers each name comes from (`tensorsBoundApart`): no values copied or transposed.
    var identitiesOnly = false
    var tensors: [String: (TensorSpec, FloatBuffer)] = [:]
    var order: [String] = []
    /// Bound buffers already added to a name: a buffer bound in two places is one value, not two.
    var seen: [String: Set<ObjectIdentifier>] = [:]

    mutating func add(_ spec: TensorSpec, _ values: FloatBuffer, source: FloatBuffer? = nil) {
        let identity = ObjectIdentifier(source ?? values)
        if seen[spec.name, default: []].contains(identity) { return }
        seen[spec.name, default: []].insert(identity)
        if identitiesOnly {
            if tensors[spec.name] == nil {
                tensors[spec.name] = (spec, values)
                order.append(spec.name)
            }
            return
        }
        guard let (kept, sum) = tensors[spec.name] else {
            let copy = FloatBuffer(uninitialized: spec.count)
            copy.pointer.update(from: values.pointer, count: spec.count)
            tensors[spec.name] = (spec, copy)
            order.append(spec.name)
            return
        }
        Kernels.add(sum.pointer, values.pointer, count: kept.count)
    }

    /// A `[out, in]` bound matrix into the spec's stored layout (transposed back for `[in, out]`).
    mutating func matrix(_ spec: TensorSpec, _ bound: FloatBuffer, out: Int, input: Int, source: FloatBuffer? = nil) {
        let layout: WeightLayout
        switch spec.layout {
        case .matrix(let l), .fusedQKV(let l, _): layout = l
        default: layout = .outIn
        }
        guard layout == .inOut, !identitiesOnly else { return add(spec, bound, source: source ?? bound) }
        let stored = FloatBuffer(uninitialized: out * input)
        Kernels.transpose(bound.pointer, rows: out, columns: input, into: stored.pointer)
        add(spec, stored, source: source ?? bound)
    }

    mutating func projection(_ specs: inout ArraySlice<TensorSpec>, _ p: Projection) {
        guard case .float(let weight) = p.weight else { return }
        matrix(specs.removeFirst(), weight, out: p.output, input: p.input)
        if let bias = p.bias { add(specs.removeFirst(), bias) }
    }

    mutating func unbind(_ layers: [ResolvedLayer], _ steps: [Step]) {
        for (layer, step) in zip(layers, steps) {
            switch (layer, step) {
            case (.leaf(let leaf), _): unbind(leaf, step)
            case (.residual(_, let body), .residual(_, let steps)): unbind(body, steps)
            case (.parallel(let branches), .parallel(let steps)):
                for (branch, branchSteps) in zip(branches, steps) { unbind(branch, branchSteps) }
            default: break
            }
        }
    }

    private mutating func unbind(_ leaf: ResolvedLeaf, _ step: Step) {
        var specs = leaf.tensors[...]
        switch (leaf.layer, step) {
        case (.positionEmbedding, .positions(_, let table, _)):
            if let table { add(specs.removeFirst(), table) }
        case (.linear, .linear(let p)):
            projection(&specs, p)
        case (.layerNorm, .layerNorm(let gamma, let beta, _, _)):
            if let gamma { add(specs.removeFirst(), gamma) }
            if let beta { add(specs.removeFirst(), beta) }
        case (.rmsNorm(let node), .rmsNorm(let gamma, _, _)):
            guard weights, let offset = node.gainOffset else {
                return add(specs.removeFirst(), gamma)  // `offset + w` has the gradient of `w`
            }
            let stored = FloatBuffer(uninitialized: gamma.count)
            for i in 0..<gamma.count { stored.pointer[i] = gamma.pointer[i] - Float(offset) }
            add(specs.removeFirst(), stored, source: gamma)
        case (.attention(let node), .attention(let w)):
            attention(node, w, &specs)
        case (.feedForward(let node), .feedForward(let w)):
            if node.gated, node.names.gateUp != nil, let gate = w.gate, case .float(let g) = gate.weight,
                case .float(let u) = w.up.weight
            {
                // Bound as two halves of one `[2F, in]` matrix: stacked back, gate first.
                let rows = FloatBuffer(uninitialized: 2 * g.count)
                rows.pointer.update(from: g.pointer, count: g.count)
                (rows.pointer + g.count).update(from: u.pointer, count: u.count)
                matrix(specs.removeFirst(), rows, out: 2 * gate.output, input: gate.input, source: g)
                if let gb = gate.bias, let ub = w.up.bias {
                    let bias = FloatBuffer(uninitialized: gb.count + ub.count)
                    bias.pointer.update(from: gb.pointer, count: gb.count)
                    (bias.pointer + gb.count).update(from: ub.pointer, count: ub.count)
                    add(specs.removeFirst(), bias, source: gb)
                }
            } else {
                if let gate = w.gate { projection(&specs, gate) }
                projection(&specs, w.up)
            }
            projection(&specs, w.down)
        default:
            break
        }
    }

    private mutating func attention(_ node: Attention, _ w: AttentionWeights, _ specs: inout ArraySlice<TensorSpec>) {
        let (h, kv, hs, input) = (w.heads, w.kvHeads, w.headWidth, w.qkv.input)
        guard case .float(let qkv) = w.qkv.weight else { return }
        switch node.projections {
        case .fused(_, _, let packing):
            var weight = qkv, bias = w.qkv.bias
            if packing == .perHead {
                weight = Self.packPerHead(qkv, heads: h, block: hs * input)
                bias = bias.map { Self.packPerHead($0, heads: h, block: hs) }
            }
            matrix(specs.removeFirst(), weight, out: (h + 2 * kv) * hs, input: input, source: qkv)
            if let bias { add(specs.removeFirst(), bias, source: w.qkv.bias) }
        case .separate:
            // Rows [q; k; v] of the concatenated projection, each into its own tensor.
            var row = 0
            for rows in [h * hs, kv * hs, kv * hs] {
                let part = FloatBuffer(uninitialized: rows * input)
                part.pointer.update(from: qkv.pointer + row * input, count: rows * input)
                matrix(specs.removeFirst(), part, out: rows, input: input, source: qkv)
                if let bias = w.qkv.bias {
                    let partBias = FloatBuffer(uninitialized: rows)
                    partBias.pointer.update(from: bias.pointer + row, count: rows)
                    add(specs.removeFirst(), partBias, source: bias)
                }
                row += rows
            }
        }
        projection(&specs, w.output)
        if let norm = w.queryKeyNorm {
            add(specs.removeFirst(), norm.query)
            add(specs.removeFirst(), norm.key)
        }
        switch w.position {
        case .none, .rotary, .xpos, .alibi, .sandwich: break
        case .t5(_, let table): add(specs.removeFirst(), table)
        case .kerple(_, let r1, let r2):
            add(specs.removeFirst(), r1)
            add(specs.removeFirst(), r2)
        case .fire(_, let f):
            for buffer in [f.w1, f.b1, f.w2, f.b2, f.c, f.multiplier] { add(specs.removeFirst(), buffer) }
        }
    }

    /// `[q_0…q_{H−1}; k_0…; v_0…]` blocks back to per head `[q_h; k_h; v_h]` (the inverse of
    /// `Binder.unpackPerHead`); a block is `block` values.
    static func packPerHead(_ source: FloatBuffer, heads: Int, block: Int) -> FloatBuffer {
        let result = FloatBuffer(uninitialized: source.count)
        for head in 0..<heads {
            for part in 0..<3 {
                (result.pointer + (head * 3 + part) * block).update(
                    from: source.pointer + (part * heads + head) * block, count: block)
            }
        }
        return result
    }
}

/// The checkpoint's spelling of an architecture's tensor name: itself, its newer in-memory name
/// (`Binder.renamed`), or without its first component when the checkpoint was saved from the base model (the Hub's
/// `gpt2` and `bloom-560m` files say `h.0.attn…`, not `transformer.h.0.attn…`); `nil` when it has no such tensor.
package func storedTensorName(_ name: String, in checkpoint: Checkpoint) -> String? {
    if checkpoint.info(name) != nil { return name }
    if let renamed = Binder.renamed[name], checkpoint.info(renamed) != nil { return renamed }
    guard let dot = name.firstIndex(of: ".") else { return nil }
    let stripped = String(name[name.index(after: dot)...])
    return checkpoint.info(stripped) != nil ? stripped : nil
}

extension BoundModel {
    /// Every fp32 parameter buffer once (a tied or shared tensor once), in a fixed order that two models of the same
    /// structure (weights and their `zeroedCopy`) share, and whether it is a matrix (two or more dimensions as
    /// stored: projections, the embedding, learned position and T5 tables; what AdamW's weight decay applies to).
    package var parameterBuffers: [(buffer: FloatBuffer, isMatrix: Bool)] {
        var result: [(buffer: FloatBuffer, isMatrix: Bool)] = []
        var seen: Set<ObjectIdentifier> = []
        func add(_ buffer: FloatBuffer?, matrix: Bool) {
            guard let buffer, seen.insert(ObjectIdentifier(buffer)).inserted else { return }
            result.append((buffer, matrix))
        }
        func add(_ weights: Weights) {
            if case .float(let buffer) = weights { add(buffer, matrix: true) }
        }
        func add(_ p: Projection) {
            add(p.weight)
            add(p.bias, matrix: false)
        }
        func walk(_ steps: [Step]) {
            for step in steps {
                switch step {
                case .positions(_, let table, _): add(table, matrix: true)
                case .linear(let p): add(p)
                case .layerNorm(let gamma, let beta, _, _):
                    add(gamma, matrix: false)
                    add(beta, matrix: false)
                case .rmsNorm(let gamma, _, _): add(gamma, matrix: false)
                case .attention(let w):
                    add(w.qkv)
                    add(w.output)
                    add(w.queryKeyNorm?.query, matrix: false)
                    add(w.queryKeyNorm?.key, matrix: false)
                    switch w.position {
                    case .none, .rotary, .xpos, .alibi, .sandwich: break
                    case .t5(_, let table): add(table, matrix: true)
                    case .kerple(_, let r1, let r2):
                        add(r1, matrix: false)
                        add(r2, matrix: false)
                    case .fire(_, let f):
                        add(f.w1, matrix: true)
                        add(f.b1, matrix: false)
                        add(f.w2, matrix: true)
                        for vector in [f.b2, f.c, f.multiplier] { add(vector, matrix: false) }
                    }
                case .feedForward(let w):
                    if let gate = w.gate { add(gate) }
                    add(w.up)
                    add(w.down)
                case .residual(_, let body): walk(body)
                case .parallel(let branches): branches.forEach(walk)
                }
            }
        }
        add(embedding.table)
        walk(body)
        add(head)
        return result
    }
}
