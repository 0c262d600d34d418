import Architecture
import Foundation
import Kernels

// One forward pass, written as a flat sequence of named kernel calls (llm.c's `gpt2_forward` is the model).
//
// Legend of dimension names:
//   T   tokens in the window (the model length)
//   C   residual width (channels)
//   H   query heads, G key/value heads, hs head width (H·hs need not equal C)
//   F   feed-forward hidden width
//   V   vocabulary
//
// Activations are `[T, C]` row-major `FloatBuffer`s; every buffer below says its shape. The embedding writes the
// first activations before any layer runs, the body transforms them, and the head scores them: binding has
// checked that the first layer is an embedding and the last an unembedding, so nothing here is optional.

/// Activations `[T, width]`.
struct Activations {
    var buffer: FloatBuffer
    var width: Int
}

/// One forward pass over a window of tokens.
struct Forward {
    let tokens: [Int32]  // [T]
    let feedForwardChunk: Int
    let logitsChunk: Int
    let vocabularySlice: Int
    /// The first super-block of the row blocks of every matrix product (`Kernels.rowBlocks`): the trained length.
    let rowBase: Int
    /// The row blocks of the projections, and of the feed-forward block (cut to `feedForwardChunk`), for this
    /// length: worked out once per pass, not per product.
    let projectionBlocks: [Range<Int>]
    let feedForwardBlocks: [Range<Int>]
    var length: Int { tokens.count }
    /// cos/sin tables per rotary (or xPos) configuration, built once per pass.
    private var rotations: RotationCache
    /// fp32 copies of the 16-bit matrices this pass multiplies by, one at a time (`WideningScratch`).
    let widening = WideningScratch()
    /// Whether attention's products take bfloat16 operands (`Precision.bf16`; the projections' packed weights say so
    /// for themselves).
    var bf16 = false

    init(tokens: [Int32], feedForwardChunk: Int, logitsChunk: Int, vocabularySlice: Int, rowBase: Int) {
        self.tokens = tokens
        self.rowBase = rowBase
        self.feedForwardChunk = feedForwardChunk
        self.logitsChunk = logitsChunk
        self.vocabularySlice = vocabularySlice
        rotations = RotationCache(length: tokens.count)
        projectionBlocks = Kernels.rowBlocks(rows: tokens.count, base: rowBase)
        feedForwardBlocks = Kernels.rowBlocks(rows: tokens.count, base: rowBase, limit: feedForwardChunk)
    }

    /// The whole pass: embed, run the body, and `log p(targets[t] | tokens[0…t])` from the head.
    mutating func scores(
        _ model: BoundModel, targets: [Int32], greedy: UnsafeMutablePointer<Bool>? = nil
    ) throws(KernelError) -> [Double] {
        let x = embed(model.embedding)  // [T, C]
        let hidden = try apply(model.body, to: x)  // [T, C]
        widening.release()
        return scores(hidden, head: model.head, softcap: model.headSoftcap, targets: targets, greedy: greedy)
    }

    /// Token embedding rows, times the embedding scale when there is one.
    private func embed(_ e: EmbeddingWeights) -> Activations {
        let out = FloatBuffer(uninitialized: length * e.width)  // [T, C]
        let destination = UncheckedPointer(out.pointer)
        tokens.withUnsafeBufferPointer { tokens in
            Kernels.parallelRows(length, minimumChunk: 256) { begin, end in
                for t in begin..<end {
                    let row = destination.pointer + t * e.width
                    e.table.copyRow(Int(tokens[t]), width: e.width, into: row)
                    if let scale = e.scale { for c in 0..<e.width { row[c] *= scale } }
                }
            }
        }
        return Activations(buffer: out, width: e.width)
    }

    /// Applies `steps` to `x` in order; residual blocks and parallel branches recurse.
    mutating func apply(_ steps: some Collection<Step>, to input: Activations) throws(KernelError) -> Activations {
        var x = input
        for step in steps {
            switch step {
            case .residual(let placement, let body):
                x = try residual(placement, body, x)
            case .parallel(let branches):
                // Every branch reads the same input (copied before any branch adds onto x); their outputs are summed
                // onto it in order.
                let inputs = branches.map { branchInput($0, from: x) }
                for (branch, input) in zip(branches, inputs) {
                    try add(branch.dropFirst(input.consumed), of: input.x, onto: x)
                }
            case .positions(let encoding, let table, let width):
                addPositions(encoding, table: table, width: width, to: x)
            case .linear(let projection):
                x = project(x, projection)
            case .layerNorm, .rmsNorm:
                normalize(step, x, into: x.buffer.pointer)
            case .attention(let weights):
                x = try attention(x, weights)
            case .feedForward(let weights):
                x = feedForward(x, weights)
            }
        }
        return x
    }

    /// `x + body(x)` (pre-norm: the norm is inside the body), or `norm(x + body'(x))` (post-norm: the body's last
    /// step is the norm, applied after the sum).
    private mutating func residual(_ placement: NormPlacement, _ body: [Step], _ x: Activations) throws(KernelError)
        -> Activations
    {
        switch placement {
        case .pre:
            let input = branchInput(body, from: x)
            try add(body.dropFirst(input.consumed), of: input.x, onto: x)
            return x
        case .post:
            let input = branchInput(body.dropLast(), from: x)
            try add(body.dropLast().dropFirst(input.consumed), of: input.x, onto: x)
            guard let norm = body.last else { return x }
            return try apply([norm], to: x)
        }
    }

    /// x += body(input). A body that ends in a projection (attention's output projection, the feed-forward's down
    /// projection, a linear layer of x's width) has that projection accumulate onto x itself: no output buffer, no
    /// zeroing of it by OpenBLAS, no addition pass. Each row's sum is x + bias + A·Bᵀ, in OpenBLAS's order.
    private mutating func add(_ body: some BidirectionalCollection<Step>, of input: Activations, onto x: Activations)
        throws(KernelError)
    {
        let head = try apply(body.dropLast(), to: input)
        switch body.last {
        case .attention(let weights) where weights.output.output == x.width: _ = try attention(head, weights, onto: x)
        case .feedForward(let weights) where weights.down.output == x.width: _ = feedForward(head, weights, onto: x)
        case .linear(let projection) where projection.output == x.width: _ = project(head, projection, onto: x)
        case let last?:
            let out = try apply([last], to: head)
            Kernels.add(x.buffer.pointer, out.buffer.pointer, count: length * x.width)
        case nil:
            Kernels.add(x.buffer.pointer, head.buffer.pointer, count: length * x.width)
        }
    }

    /// The input a branch of the residual stream `x` works on, which must not alias `x`: when the branch starts
    /// with a norm over whole rows (pre-norm), that norm read from `x` into a new buffer (`consumed` = 1 step);
    /// otherwise a copy of `x`.
    private func branchInput(_ body: some Collection<Step>, from x: Activations) -> (x: Activations, consumed: Int) {
        switch body.first {
        case let norm? where norm.normWidth == x.width:
            let out = FloatBuffer(uninitialized: length * x.width)  // [T, C]
            normalize(norm, x, into: out.pointer)
            return (Activations(buffer: out, width: x.width), 1)
        default:
            return (copy(x), 0)
        }
    }

    /// Applies a norm step to the rows of `x`, writing into `out` (`x`'s own buffer: in place).
    private func normalize(_ step: Step, _ x: Activations, into out: UnsafeMutablePointer<Float>) {
        switch step {
        case .layerNorm(let gamma, let beta, let epsilon, let width):
            Kernels.layerNorm(
                x.buffer.pointer, rows: length, width: width, stride: x.width,
                gamma: gamma.map { UnsafePointer($0.pointer) }, beta: beta.map { UnsafePointer($0.pointer) },
                epsilon: epsilon, into: out)
        case .rmsNorm(let gamma, let epsilon, let width):
            Kernels.rmsNorm(
                x.buffer.pointer, rows: length, width: width, stride: x.width, gamma: gamma.pointer, epsilon: epsilon,
                into: out)
        default:
            break
        }
    }

    private func copy(_ x: Activations) -> Activations {
        let buffer = FloatBuffer(uninitialized: length * x.width)  // [T, width]
        let (source, destination) = (UncheckedPointer(x.buffer.pointer), UncheckedPointer(buffer.pointer))
        Kernels.parallelRows(length, minimumChunk: 256) { begin, end in
            (destination.pointer + begin * x.width).initialize(
                from: source.pointer + begin * x.width,
                count: (end - begin) * x.width)
        }
        return Activations(buffer: buffer, width: x.width)
    }

    private func addPositions(_ encoding: InputPositionEncoding, table: FloatBuffer?, width: Int, to x: Activations) {
        switch encoding {
        case .learned(_, let offset):
            guard let table else { return }
            Kernels.add(x.buffer.pointer, table.pointer + offset * width, count: length * width)
        case .sinusoidal(let layout, let offset):
            let pointer = UncheckedPointer(x.buffer.pointer)
            Kernels.parallelRows(length, minimumChunk: 256) { begin, end in
                for t in begin..<end {
                    let vector = layout.embedding(position: t + offset, width: width)
                    for c in 0..<width { pointer.pointer[t * width + c] += Float(vector[c]) }
                }
            }
        }
    }

    /// `x · Wᵀ + b` for all rows (in the position-fixed row blocks, split between the threads; the bias added by the
    /// thread that wrote them), into a new buffer, or added onto `target` (`[T, out]`) when one is given.
    private func project(_ x: Activations, _ p: Projection, onto target: Activations? = nil) -> Activations {
        let out = target?.buffer ?? FloatBuffer(uninitialized: length * p.output)  // [T, out]
        let (input, output) = (UncheckedPointer(x.buffer.pointer), UncheckedPointer(out.pointer))
        let weight = widening.operand(p.weight)
        Kernels.parallelBlocks(projectionBlocks) { _, begin, end in
            let destination = output.pointer + begin * p.output
            weight.linear(
                input.pointer + begin * x.width, lda: x.width, bias: p.bias?.pointer, destination, ldc: p.output,
                m: end - begin, n: p.output, k: p.input, accumulate: target != nil)
        }
        return Activations(buffer: out, width: p.output)
    }

    private mutating func attention(_ x: Activations, _ w: AttentionWeights, onto target: Activations? = nil)
        throws(KernelError) -> Activations
    {
        let hs = w.headWidth
        let qkv = project(x, w.qkv)  // [T, (H + 2G)·hs]
        let stride = qkv.width
        let q = qkv.buffer.pointer
        let k = q + w.heads * hs
        let v = k + w.kvHeads * hs
        if let norm = w.queryKeyNorm { normalize(queries: q, keys: k, stride: stride, norm, w) }
        if let tables = rotation(for: w.position, headWidth: hs) {
            let (qp, kp) = (UncheckedPointer(q), UncheckedPointer(k))
            Kernels.parallelFor(w.heads + w.kvHeads) { index in
                let isQuery = index < w.heads
                let base = isQuery ? qp.pointer + index * hs : kp.pointer + (index - w.heads) * hs
                Kernels.rotate(
                    base, rows: length, stride: stride, half: tables.pairs,
                    cos: isQuery ? tables.queryCos.pointer : tables.keyCos.pointer,
                    sin: isQuery ? tables.querySin.pointer : tables.keySin.pointer,
                    interleaved: tables.interleaved)
            }
        }
        let out = FloatBuffer(uninitialized: length * w.heads * hs)  // [T, H·hs]
        let shape = AttentionShape(
            length: length, heads: w.heads, kvHeads: w.kvHeads, headWidth: hs, scale: w.scale,
            window: w.node.window, softcap: w.node.softcap.map { Float($0) }, bf16: bf16)
        try Kernels.attention(
            q: q, qStride: stride, k: k, kStride: stride, v: v, vStride: stride, out: out.pointer,
            outStride: w.heads * hs, shape: shape, bias: BiasTables.make(w, length: length))
        return project(Activations(buffer: out, width: w.heads * hs), w.output, onto: target)
    }

    /// RMSNorm of every query and key row in place (`QueryKeyNorm`): per head, or over all heads of a position.
    private func normalize(
        queries q: UnsafeMutablePointer<Float>, keys k: UnsafeMutablePointer<Float>, stride: Int,
        _ norm: BoundQueryKeyNorm, _ w: AttentionWeights
    ) {
        let hs = w.headWidth
        guard norm.perHead else {
            Kernels.rmsNorm(
                q, rows: length, width: w.heads * hs, stride: stride, gamma: norm.query.pointer, epsilon: norm.epsilon)
            Kernels.rmsNorm(
                k, rows: length, width: w.kvHeads * hs, stride: stride, gamma: norm.key.pointer, epsilon: norm.epsilon)
            return
        }
        for head in 0..<w.heads {
            Kernels.rmsNorm(
                q + head * hs, rows: length, width: hs, stride: stride, gamma: norm.query.pointer, epsilon: norm.epsilon
            )
        }
        for head in 0..<w.kvHeads {
            Kernels.rmsNorm(
                k + head * hs, rows: length, width: hs, stride: stride, gamma: norm.key.pointer, epsilon: norm.epsilon)
        }
    }

    private mutating func rotation(for position: BoundPosition, headWidth: Int) -> RotationTables? {
        rotations.tables(for: position, headWidth: headWidth)
    }
}

extension Step {
    /// The width a norm step normalises over, `nil` for any other step.
    fileprivate var normWidth: Int? {
        switch self {
        case .layerNorm(_, _, _, let width), .rmsNorm(_, _, let width): width
        default: nil
        }
    }
}
