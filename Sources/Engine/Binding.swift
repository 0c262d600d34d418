import Architecture
import Checkpoints
import Kernels

/// A projection ready for `sgemm`: weight `[out, in]` row-major (fp32, or 16-bit as stored), optional `[out]` bias.
package struct Projection: @unchecked Sendable {
    package var weight: Weights
    package var bias: FloatBuffer?
    package var input: Int
    package var output: Int
}

/// Attention weights with q, k, v rows concatenated (all q, then k, then v).
package struct AttentionWeights: @unchecked Sendable {
    package var node: Attention
    package var qkv: Projection
    package var output: Projection
    package var heads: Int
    package var kvHeads: Int
    package var headWidth: Int
    package var scale: Float
    /// The position method with every tensor it needs: a method with weights cannot be bound without them.
    package var position: BoundPosition
    /// RMSNorm of the queries and keys before the position method, with its gains.
    package var queryKeyNorm: BoundQueryKeyNorm?
}

/// `QueryKeyNorm` with its two gains: `[hs]` each (per head), or `[H·hs]` and `[G·hs]` (all heads at once).
package struct BoundQueryKeyNorm: @unchecked Sendable {
    package var perHead: Bool
    package var epsilon: Float
    package var query: FloatBuffer
    package var key: FloatBuffer
}

/// An attention layer's position method, bound: one case per method, each carrying the tensors it reads.
package enum BoundPosition: @unchecked Sendable {
    case none
    case rotary(Rotary)
    case xpos(XPos)
    case alibi(ALiBi)
    case sandwich(Sandwich)
    /// T5: the bucket table `[buckets, heads]`.
    case t5(T5Bias, table: FloatBuffer)
    /// KERPLE: `r1`, `r2` per head.
    case kerple(Kerple, r1: FloatBuffer, r2: FloatBuffer)
    /// FIRE: the bias MLP and its two scalars.
    case fire(Fire, FireWeights)
}

/// FIRE's tensors: `mlp.0` `[hidden, 1]` + bias, `mlp.2` `[heads, hidden]` + bias, `c`, `threshold_multiplier`.
package struct FireWeights: @unchecked Sendable {
    package var w1: FloatBuffer, b1: FloatBuffer, w2: FloatBuffer, b2: FloatBuffer, c: FloatBuffer,
        multiplier: FloatBuffer
}

/// Feed-forward weights.
package struct FeedForwardWeights: @unchecked Sendable {
    package var node: FeedForward
    package var gate: Projection?
    package var up: Projection
    package var down: Projection
}

/// The token embedding: table `[V, C]`, optionally scaled (fairseq's `√C`).
package struct EmbeddingWeights: @unchecked Sendable {
    package var table: Weights
    package var vocabulary: Int
    package var width: Int
    package var scale: Float?
}

/// The bound model: embedding, the layers between, and the vocabulary head. Binding guarantees the shape, so the
/// forward pass has activations from its first line on and never meets an embedding or head inside the body.
package struct BoundModel: @unchecked Sendable {
    package var embedding: EmbeddingWeights
    package var body: [Step]
    package var head: Projection
    /// The logits' soft cap (`Unembedding.softcap`), or `nil`.
    package var headSoftcap: Float? = nil
}

/// One layer of the body, with its weights.
package indirect enum Step: @unchecked Sendable {
    case positions(InputPositionEncoding, table: FloatBuffer?, width: Int)
    case linear(Projection)
    case layerNorm(gamma: FloatBuffer?, beta: FloatBuffer?, epsilon: Float, width: Int)
    case rmsNorm(gamma: FloatBuffer, epsilon: Float, width: Int)
    case attention(AttentionWeights)
    case feedForward(FeedForwardWeights)
    case residual(NormPlacement, [Step])
    case parallel([[Step]])
}

/// Binds an architecture's tensors to a checkpoint: converts to fp32 (or keeps 16-bit matrices as stored),
/// transposes `[in, out]` matrices, reorders per-head fused q/k/v, shares tied and shared tensors, and collects every
/// problem before failing.
struct Binder {
    let checkpoint: Checkpoint
    let ignoredSuffixes: [String]
    /// Whether projection and embedding matrices stored as F16/BF16 stay so (`WeightStorage`).
    let keepHalf: Bool
    /// Whether every projection is packed in bfloat16 as it is bound (`Precision.bf16`; its source is freed then).
    let pack: Bool
    private(set) var missing: [String] = []
    private(set) var misshaped: [ShapeMismatch] = []
    private(set) var unsupported: [UnsupportedOption] = []
    /// Tensors more than one leaf reads (shared layers, T5's layer-0 table): converted once and kept for reuse.
    /// Everything else is converted when bound and not cached, so intermediates (a Conv1D matrix before its
    /// transpose, per-head fused q/k/v before reordering) are freed at once instead of at the end of binding.
    private let shared: Set<String>
    private var loaded: [String: FloatBuffer] = [:]
    private var loadedMatrices: [String: Weights] = [:]
    private var tiedNames: Set<String> = []
    /// Names the architecture asked for that the checkpoint has (bound or misshaped): never "unused".
    private var requested: Set<String> = []

    init(checkpoint: Checkpoint, ignoredSuffixes: [String], layers: [ResolvedLayer], keepHalf: Bool, pack: Bool) {
        self.checkpoint = checkpoint
        self.ignoredSuffixes = ignoredSuffixes
        self.keepHalf = keepHalf
        self.pack = pack
        var uses: [String: Int] = [:]
        func count(_ layers: [ResolvedLayer]) {
            for layer in layers {
                switch layer {
                case .leaf(let leaf): for spec in leaf.tensors { uses[spec.name, default: 0] += 1 }
                case .residual(_, let body): count(body)
                case .parallel(let branches): branches.forEach(count)
                }
            }
        }
        count(layers)
        shared = Set(uses.filter { $0.value > 1 }.keys)
    }

    /// Binds everything and throws one error listing every missing, unused and misshaped tensor, or every
    /// unsupported option.
    static func bind(
        _ architecture: Architecture, checkpoint: Checkpoint, ignoredSuffixes: [String], keepHalf: Bool,
        pack: Bool = false
    ) throws(EngineError) -> BoundModel {
        var layers = architecture.resolvedLayers
        var binder = Binder(
            checkpoint: checkpoint, ignoredSuffixes: ignoredSuffixes, layers: layers, keepHalf: keepHalf, pack: pack)
        guard case .leaf(let first)? = layers.first, case .tokenEmbedding(let node) = first.layer else {
            throw .unsupported(location: "layers[0]", reason: "the first layer must be a token embedding")
        }
        guard case .leaf(let last)? = layers.last, case .unembedding(let unembedding) = last.layer else {
            throw .unsupported(
                location: "layers[\(max(layers.count - 1, 0))]", reason: "the last layer must be an unembedding")
        }
        layers = Array(layers.dropFirst().dropLast())
        let table = binder.loadMatrix(first.tensors[0])
        let embedding = EmbeddingWeights(
            table: table, vocabulary: node.vocabulary, width: node.width,
            scale: node.scale.map { Float($0) })
        let body = binder.bind(layers)
        let head = binder.packedIfComputingSo(binder.head(unembedding, leaf: last, embedding: embedding))
        if !binder.unsupported.isEmpty { throw .unsupportedOptions(binder.unsupported) }
        let used = binder.requested.union(binder.tiedNames)
        let unused = checkpoint.names.filter { name in
            !used.contains(name) && !ignoredSuffixes.contains { name.hasSuffix($0) }
        }
        if !binder.missing.isEmpty || !binder.misshaped.isEmpty || !unused.isEmpty {
            throw .binding(path: checkpoint.path, missing: binder.missing, unused: unused, misshaped: binder.misshaped)
        }
        return BoundModel(
            embedding: embedding, body: body, head: head, headSoftcap: unembedding.softcap.map { Float($0) })
    }

    /// The vocabulary head: its own projection, or the embedding table when tied.
    private mutating func head(_ node: Unembedding, leaf: ResolvedLeaf, embedding: EmbeddingWeights) -> Projection {
        let vocabulary = embedding.vocabulary
        var specs = leaf.tensors[...]
        guard node.tied else { return projection(&specs, bias: node.bias, out: vocabulary, input: leaf.width) }
        // A tied head has no tensor of its own; a stray copy in the checkpoint is the same values.
        tiedNames.insert(node.key.isEmpty ? "weight" : "\(node.key).weight")
        return Projection(weight: embedding.table, bias: nil, input: leaf.width, output: vocabulary)
    }

    private mutating func bind(_ layers: [ResolvedLayer]) -> [Step] {
        layers.map { layer in
            switch layer {
            case .leaf(let leaf): return packedIfComputingSo(bind(leaf))
            case .residual(let placement, let body): return .residual(placement, bind(body))
            case .parallel(let branches): return .parallel(branches.map { bind($0) })
            }
        }
    }

    /// Reads one tensor as fp32; records a problem and returns a placeholder when it is missing or misshaped.
    mutating func load(_ spec: TensorSpec) -> FloatBuffer {
        if let cached = loaded[spec.name] { return cached }
        guard let stored = locate(spec) else { return FloatBuffer(count: spec.count) }
        let buffer = FloatBuffer(uninitialized: spec.count)  // convert writes every value (or binding fails)
        do { try checkpoint.convert(stored, into: buffer.pointer) } catch {
            misshaped.append(ShapeMismatch(name: spec.name, expected: spec.shape, actual: error.description))
        }
        if shared.contains(spec.name) { loaded[spec.name] = buffer }
        return buffer
    }

    /// Reads a matrix: at its stored 16-bit precision when the binder keeps those and the checkpoint stores it so,
    /// else as fp32 (`load`).
    mutating func loadMatrix(_ spec: TensorSpec) -> Weights {
        if let cached = loadedMatrices[spec.name] { return cached }
        guard keepHalf, let info = storedName(spec.name).flatMap(checkpoint.info),
            let format = Weights.halfFormat(info.dtype)
        else { return .float(load(spec)) }
        // Checked once: a misshaped tensor is recorded here, not a second time by `load`.
        guard let stored = locate(spec) else { return .float(FloatBuffer(count: spec.count)) }
        let buffer = HalfBuffer(uninitialized: spec.count, format: format)
        do { try checkpoint.copyStored(stored, into: buffer.pointer) } catch {
            misshaped.append(ShapeMismatch(name: spec.name, expected: spec.shape, actual: error.description))
        }
        if shared.contains(spec.name) { loadedMatrices[spec.name] = .half(buffer) }
        return .half(buffer)
    }

    /// The checkpoint's name for a tensor the architecture reads, once its shape and dtype are checked; `nil`, with
    /// the problem recorded, when it is missing, misshaped or not floating point.
    private mutating func locate(_ spec: TensorSpec) -> String? {
        guard let stored = storedName(spec.name), let info = checkpoint.info(stored) else {
            missing.append(spec.name)
            return nil
        }
        requested.insert(stored)
        guard info.shape == spec.shape || (info.count == spec.count && squeezed(info.shape) == squeezed(spec.shape))
        else {
            misshaped.append(ShapeMismatch(name: spec.name, expected: spec.shape, actual: "\(info.shape)"))
            return nil
        }
        guard info.dtype.isConvertibleToFloat else {
            misshaped.append(
                ShapeMismatch(
                    name: spec.name, expected: spec.shape,
                    actual: "dtype \(info.dtype.rawValue), which is not floating point"))
            return nil
        }
        return stored
    }

    private func squeezed(_ shape: [Int]) -> [Int] { shape.filter { $0 != 1 } }

    /// Names a family's tensors take in memory under newer `transformers`, which `save_pretrained` writes back in
    /// the original form but `torch.save(model.state_dict())` does not (transformers 5 holds GPT-NeoX's `embed_out` as
    /// `lm_head`).
    static let renamed = ["embed_out.weight": "lm_head.weight"]

    /// The checkpoint's name for `name` (`storedTensorName`).
    private func storedName(_ name: String) -> String? { storedTensorName(name, in: checkpoint) }

    /// A matrix in `[out, in]` order whatever its stored layout.
    private mutating func matrix(_ spec: TensorSpec, out: Int, input: Int) -> Weights {
        let stored = loadMatrix(spec)
        let layout: WeightLayout
        switch spec.layout {
        case .matrix(let l), .fusedQKV(let l, _): layout = l
        default: layout = .outIn
        }
        return layout == .inOut ? stored.transposed(rows: input, columns: out) : stored
    }

    private mutating func projection(_ specs: inout ArraySlice<TensorSpec>, bias: Bool, out: Int, input: Int)
        -> Projection
    {
        let weight = matrix(specs.removeFirst(), out: out, input: input)
        let biasBuffer = bias ? load(specs.removeFirst()) : nil
        return Projection(weight: weight, bias: biasBuffer, input: input, output: out)
    }

    /// `step` with its projections packed in bfloat16 when the model computes so (`pack`), as soon as it is bound, so
    /// the source matrices are freed leaf by leaf. Once a tensor is missing or misshaped nothing more is packed:
    /// binding will fail, and a placeholder's shape is not to be trusted.
    private func packedIfComputingSo(_ step: Step) -> Step {
        guard pack, missing.isEmpty, misshaped.isEmpty else { return step }
        switch step {
        case .linear(let p): return .linear(packedIfComputingSo(p))
        case .attention(var w):
            w.qkv = packedIfComputingSo(w.qkv)
            w.output = packedIfComputingSo(w.output)
            return .attention(w)
        case .feedForward(var w):
            w.gate = w.gate.map { packedIfComputingSo($0) }
            w.up = packedIfComputingSo(w.up)
            w.down = packedIfComputingSo(w.down)
            return .feedForward(w)
        case .positions, .layerNorm, .rmsNorm, .residual, .parallel: return step
        }
    }

    private func packedIfComputingSo(_ p: Projection) -> Projection {
        guard pack, missing.isEmpty, misshaped.isEmpty, p.weight.count == p.input * p.output else { return p }
        var packed = p
        packed.weight = p.weight.packedBF16(rows: p.output, columns: p.input)
        return packed
    }

    private mutating func bind(_ leaf: ResolvedLeaf) -> Step {
        var specs = leaf.tensors[...]
        switch leaf.layer {
        case .positionEmbedding(let node):
            let table = specs.isEmpty ? nil : load(specs.removeFirst())
            return .positions(node.encoding, table: table, width: leaf.width)
        case .linear(let node):
            return .linear(projection(&specs, bias: node.bias, out: node.output, input: node.input))
        case .layerNorm(let node):
            let gamma = node.affine ? load(specs.removeFirst()) : nil
            let beta = node.affine && node.bias ? load(specs.removeFirst()) : nil
            return .layerNorm(gamma: gamma, beta: beta, epsilon: Float(node.epsilon), width: node.width)
        case .rmsNorm(let node):
            let gamma = load(specs.removeFirst())
            if let offset = node.gainOffset {
                // `1 + w` in fp32, as Gemma's norm computes it before multiplying: the same rounding.
                let shifted = FloatBuffer(uninitialized: gamma.count)
                for i in 0..<gamma.count { shifted.pointer[i] = Float(offset) + gamma.pointer[i] }
                return .rmsNorm(gamma: shifted, epsilon: Float(node.epsilon), width: node.width)
            }
            return .rmsNorm(gamma: gamma, epsilon: Float(node.epsilon), width: node.width)
        case .attention(let node):
            return .attention(bindAttention(node, leaf: leaf, specs: &specs))
        case .feedForward(let node):
            let width = leaf.width
            var (gate, up): (Projection?, Projection)
            if node.gated, node.names.gateUp != nil {
                let fused = projection(&specs, bias: node.bias, out: 2 * node.hidden, input: width)
                (gate, up) = (Self.rows(fused, 0..<node.hidden), Self.rows(fused, node.hidden..<2 * node.hidden))
            } else {
                gate = node.gated ? projection(&specs, bias: node.bias, out: node.hidden, input: width) : nil
                up = projection(&specs, bias: node.bias, out: node.hidden, input: width)
            }
            let down = projection(&specs, bias: node.bias, out: width, input: node.hidden)
            return .feedForward(FeedForwardWeights(node: node, gate: gate, up: up, down: down))
        case .tokenEmbedding, .unembedding:
            unsupported.append(
                UnsupportedOption(
                    location: leaf.location,
                    reason: "a token embedding or unembedding can only be the first or last layer"))
            return .parallel([])
        case .repeated, .residual, .parallelResidual, .branch:
            unsupported.append(
                UnsupportedOption(location: leaf.location, reason: "a container layer where a leaf was resolved"))
            return .parallel([])
        }
    }

    private mutating func bindAttention(_ node: Attention, leaf: ResolvedLeaf, specs: inout ArraySlice<TensorSpec>)
        -> AttentionWeights
    {
        let width = leaf.width
        let hs = node.resolvedHeadWidth(residualWidth: width)
        let (h, kv) = (node.heads, node.resolvedKVHeads)
        let outputBias = node.outputBias ?? node.bias
        let qkv: Projection
        switch node.projections {
        case .fused(_, _, let packing):
            var fused = projection(&specs, bias: node.bias, out: (h + 2 * kv) * hs, input: width)
            if packing == .perHead {
                if kv != h {
                    unsupported.append(
                        UnsupportedOption(
                            location: leaf.location,
                            reason: "per-head fused q/k/v with \(kv) key/value heads for \(h) query heads"))
                } else {
                    fused.weight = fused.weight.rearranged(count: fused.weight.count) { source, destination, bytes in
                        Self.unpackPerHead(source, into: destination, heads: h, blockBytes: hs * width * bytes)
                    }
                    fused.bias = fused.bias.map { bias in
                        let result = FloatBuffer(uninitialized: bias.count)
                        Self.unpackPerHead(bias.pointer, into: result.pointer, heads: h, blockBytes: hs * 4)
                        return result
                    }
                }
            }
            qkv = fused
        case .separate:
            let q = projection(&specs, bias: node.bias, out: h * hs, input: width)
            let k = projection(&specs, bias: node.bias, out: kv * hs, input: width)
            let v = projection(&specs, bias: node.bias, out: kv * hs, input: width)
            qkv = Self.concatenate([q, k, v], input: width)
        }
        let output = projection(&specs, bias: outputBias, out: width, input: h * hs)
        let norm = node.queryKeyNorm.map { norm in
            BoundQueryKeyNorm(
                perHead: norm.scope == .head, epsilon: Float(norm.epsilon), query: load(specs.removeFirst()),
                key: load(specs.removeFirst()))
        }
        let position = bindPosition(node.position, specs: &specs, location: leaf.location)
        return AttentionWeights(
            node: node, qkv: qkv, output: output, heads: h, kvHeads: kv, headWidth: hs,
            scale: Float(node.resolvedScale(residualWidth: width)), position: position, queryKeyNorm: norm)
    }

    /// The position method with its tensors, in the manifest's order (T5 table; KERPLE r1, r2; FIRE mlp.0 weight,
    /// mlp.0 bias, mlp.2 weight, mlp.2 bias, c, threshold_multiplier). A tensor the manifest does not list is an
    /// unsupported architecture, never a method without its weights.
    private mutating func bindPosition(
        _ position: AttentionPosition, specs: inout ArraySlice<TensorSpec>,
        location: String
    ) -> BoundPosition {
        func next() -> FloatBuffer {
            guard !specs.isEmpty else {
                unsupported.append(
                    UnsupportedOption(location: location, reason: "the manifest lists too few position tensors"))
                return FloatBuffer(count: 1)
            }
            return load(specs.removeFirst())
        }
        switch position {
        case .none: return .none
        case .rotary(let rotary): return .rotary(rotary)
        case .xpos(let xpos): return .xpos(xpos)
        case .alibi(let alibi): return .alibi(alibi)
        case .sandwich(let sandwich): return .sandwich(sandwich)
        case .t5(let t5): return .t5(t5, table: next())
        case .kerple(let kerple): return .kerple(kerple, r1: next(), r2: next())
        case .fire(let fire):
            return .fire(
                fire, FireWeights(w1: next(), b1: next(), w2: next(), b2: next(), c: next(), multiplier: next()))
        }
    }

    /// Per head `[q_h; k_h; v_h]` rows → `[q_0…q_{H−1}; k_0…; v_0…]`; a block is one head's q (or k, or v) rows.
    static func unpackPerHead(
        _ source: UnsafeMutableRawPointer, into result: UnsafeMutableRawPointer, heads: Int, blockBytes: Int
    ) {
        for head in 0..<heads {
            for part in 0..<3 {
                (result + (part * heads + head) * blockBytes).copyMemory(
                    from: source + (head * 3 + part) * blockBytes, byteCount: blockBytes)
            }
        }
    }

    /// Output rows `range` of a projection, in the values' own precision (a fused gate and up split in two).
    static func rows(_ p: Projection, _ range: Range<Int>) -> Projection {
        let weight = p.weight.rearranged(count: range.count * p.input) { source, destination, bytes in
            destination.copyMemory(
                from: source + range.lowerBound * p.input * bytes, byteCount: range.count * p.input * bytes)
        }
        let bias = p.bias.map { bias in
            let part = FloatBuffer(uninitialized: range.count)
            part.pointer.update(from: bias.pointer + range.lowerBound, count: range.count)
            return part
        }
        return Projection(weight: weight, bias: bias, input: p.input, output: range.count)
    }

    /// Stacks projections row-wise into one `[Σ out, in]` projection: in 16 bits when every part is stored in the
    /// same 16-bit format, else in fp32 (a 16-bit part widened exactly).
    static func concatenate(_ parts: [Projection], input: Int) -> Projection {
        let total = parts.reduce(0) { $0 + $1.output }
        let hasBias = parts.contains { $0.bias != nil }
        let bias = hasBias ? FloatBuffer(count: total) : nil
        let formats = Set(
            parts.map { part -> HalfBuffer.Format? in
                if case .half(let values) = part.weight { return values.format }
                return nil
            })
        let weight: Weights
        if formats.count == 1, let format = formats.first ?? nil {
            let values = HalfBuffer(uninitialized: total * input, format: format)
            var row = 0
            for part in parts {
                guard case .half(let source) = part.weight else { continue }
                (values.pointer + row * input).update(from: source.pointer, count: part.output * input)
                row += part.output
            }
            weight = .half(values)
        } else {
            let values = FloatBuffer(uninitialized: total * input)
            for (index, part) in parts.enumerated() {
                let row = parts[..<index].reduce(0) { $0 + $1.output }
                for r in 0..<part.output {
                    part.weight.copyRow(r, width: input, into: values.pointer + (row + r) * input)
                }
            }
            weight = .float(values)
        }
        var row = 0
        for part in parts {
            if let bias, let partBias = part.bias {
                (bias.pointer + row).update(from: partBias.pointer, count: part.output)
            }
            row += part.output
        }
        return Projection(weight: weight, bias: bias, input: input, output: total)
    }
}
