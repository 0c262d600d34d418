import Architecture
import Engine
import Foundation
import Kernels

// The training forward pass: the evaluation pass's steps (`Engine/Forward.swift`), on the same bound model and the
// same kernels, but every step writes a new buffer and leaves behind what its backward pass needs (a `Record`):
// the step's input, and for attention and the feed-forward block the few intermediates that are cheaper to keep
// than to recompute. Nothing is `[T, T]`: attention keeps its inputs and output, and its backward recomputes each
// row's probabilities (`Backward+Attention.swift`).
//
// Legend as in `Forward.swift`: T tokens, C residual width, H query heads, G key/value heads, hs head width,
// F feed-forward hidden width, V vocabulary.

/// Activations `[T, width]`.
struct Act {
    var buffer: FloatBuffer
    var width: Int
}

/// What one step's backward pass reads.
indirect enum Record {
    case positions
    case linear(input: Act)
    case norm(input: Act)
    case attention(AttentionRecord)
    /// The input, and the up (and gate) projections before the activation, `[T, F]`.
    case feedForward(input: Act, up: FloatBuffer, gate: FloatBuffer?)
    /// Pre-norm: the body's records. Post-norm: the body's records and the norm's (last).
    case residual([Record])
    case parallel([[Record]])
}

struct AttentionRecord {
    /// The layer's input `[T, C]`.
    var input: Act
    /// q, k, v as projected `[T, (H + 2G)·hs]`, before the query/key norm (kept only when there is one).
    var projected: FloatBuffer?
    /// q, k, v as attention read them (normalised, rotated).
    var qkv: FloatBuffer
    /// Attention's output before the output projection `[T, H·hs]`.
    var out: FloatBuffer
    /// The additive bias tables the forward kernel used.
    var bias: AttentionBiasTables
}

/// One training forward pass over a window.
struct Tape {
    let tokens: [Int32]
    var length: Int { tokens.count }
    var rotations: RotationCache

    init(tokens: [Int32]) {
        self.tokens = tokens
        rotations = RotationCache(length: tokens.count)
    }

    /// Embeds the tokens: `[T, C]`.
    func embed(_ e: EmbeddingWeights) -> Act {
        let out = FloatBuffer(uninitialized: length * e.width)
        for t in 0..<length {
            let row = out.pointer + t * e.width
            e.table.copyRow(Int(tokens[t]), width: e.width, into: row)
            if let scale = e.scale { for c in 0..<e.width { row[c] *= scale } }
        }
        return Act(buffer: out, width: e.width)
    }

    mutating func apply(_ steps: [Step], to input: Act) throws(KernelError) -> (Act, [Record]) {
        var x = input
        var records: [Record] = []
        records.reserveCapacity(steps.count)
        for step in steps {
            let record: Record
            (x, record) = try apply(step, to: x)
            records.append(record)
        }
        return (x, records)
    }

    private mutating func apply(_ step: Step, to x: Act) throws(KernelError) -> (Act, Record) {
        switch step {
        case .residual(.pre, let body):
            let (branch, records) = try apply(body, to: x)
            return (sum(x, branch), .residual(records))
        case .residual(.post, let body):
            let (branch, records) = try apply(Array(body.dropLast()), to: x)
            guard let norm = body.last else { return (sum(x, branch), .residual(records)) }
            let (out, record) = try apply(norm, to: sum(x, branch))
            return (out, .residual(records + [record]))
        case .parallel(let branches):
            var out = copy(x)
            var all: [[Record]] = []
            for branch in branches {
                let (y, records) = try apply(branch, to: x)
                out = sum(out, y)
                all.append(records)
            }
            return (out, .parallel(all))
        case .positions(let encoding, let table, let width):
            let out = copy(x)
            Self.addPositions(encoding, table: table, width: width, length: length, to: out.buffer.pointer)
            return (out, .positions)
        case .linear(let p):
            return (project(x, p), .linear(input: x))
        case .layerNorm, .rmsNorm:
            let out = copy(x)
            Self.normalize(step, out.buffer.pointer, rows: length, stride: x.width)
            return (out, .norm(input: x))
        case .attention(let w):
            return try attention(x, w)
        case .feedForward(let w):
            return feedForward(x, w)
        }
    }

    func project(_ x: Act, _ p: Projection) -> Act {
        let out = FloatBuffer(uninitialized: length * p.output)
        guard case .float(let weight) = p.weight else { preconditionFailure("training binds fp32 weights") }
        Kernels.linear(
            x.buffer.pointer, lda: x.width, weight.pointer, ldb: p.input,
            bias: p.bias.map { UnsafePointer($0.pointer) },
            out.pointer, ldc: p.output, m: length, n: p.output, k: p.input)
        withExtendedLifetime((x, p)) {}  // read through raw pointers by the threads
        return Act(buffer: out, width: p.output)
    }

    private mutating func attention(_ x: Act, _ w: AttentionWeights) throws(KernelError) -> (Act, Record) {
        let hs = w.headWidth
        let projected = project(x, w.qkv)  // [T, (H + 2G)·hs]
        let stride = projected.width
        let qkv = w.queryKeyNorm == nil ? projected.buffer : copy(projected).buffer
        let q = qkv.pointer
        let k = q + w.heads * hs
        let v = k + w.kvHeads * hs
        if let norm = w.queryKeyNorm {
            Self.forEachNormedRow(norm, heads: w.heads, kvHeads: w.kvHeads, headWidth: hs) { offset, width, gamma in
                Kernels.rmsNorm(
                    q + offset, rows: length, width: width, stride: stride, gamma: gamma, epsilon: norm.epsilon)
            }
        }
        if let tables = rotation(for: w.position, headWidth: hs) {
            Self.rotate(q, k, stride: stride, heads: w.heads, kvHeads: w.kvHeads, headWidth: hs, length: length, tables)
        }
        let out = FloatBuffer(uninitialized: length * w.heads * hs)  // [T, H·hs]
        let shape = AttentionShape(
            length: length, heads: w.heads, kvHeads: w.kvHeads, headWidth: hs, scale: w.scale,
            window: w.node.window, softcap: w.node.softcap.map { Float($0) })
        let bias = BiasTables.make(w, length: length)
        try Kernels.attention(
            q: q, qStride: stride, k: k, kStride: stride, v: v, vStride: stride, out: out.pointer,
            outStride: w.heads * hs, shape: shape, bias: bias)
        let y = project(Act(buffer: out, width: w.heads * hs), w.output)
        let record = AttentionRecord(
            input: x, projected: w.queryKeyNorm == nil ? nil : projected.buffer, qkv: qkv, out: out, bias: bias)
        return (y, .attention(record))
    }

    private func feedForward(_ x: Act, _ w: FeedForwardWeights) -> (Act, Record) {
        let up = project(x, w.up).buffer  // [T, F]
        let gate = w.gate.map { project(x, $0).buffer }
        let hidden = Self.hidden(up: up, gate: gate, count: length * w.up.output, kind: w.node.activation)
        let y = project(Act(buffer: hidden, width: w.up.output), w.down)
        return (y, .feedForward(input: x, up: up, gate: gate))
    }

    /// The feed-forward block's hidden activations: `act(gate) ⊙ up`, or `act(up)`.
    static func hidden(up: FloatBuffer, gate: FloatBuffer?, count: Int, kind: Activation) -> FloatBuffer {
        let out = FloatBuffer(uninitialized: count)
        out.pointer.update(from: (gate ?? up).pointer, count: count)
        Kernels.activation(out.pointer, count: count, kind: kind.kernel)
        if gate != nil { Kernels.multiply(out.pointer, by: up.pointer, count: count) }
        return out
    }

    mutating func rotation(for position: BoundPosition, headWidth: Int) -> RotationTables? {
        rotations.tables(for: position, headWidth: headWidth)
    }

    /// Rotates every query and key head of `q`/`k` (rows `stride` apart) by the tables (cos, sin); the backward
    /// pass passes tables with sin negated, the transposed rotation.
    static func rotate(
        _ q: UnsafeMutablePointer<Float>, _ k: UnsafeMutablePointer<Float>, stride: Int, heads: Int, kvHeads: Int,
        headWidth hs: Int, length: Int, _ tables: RotationTables
    ) {
        let (qp, kp) = (UncheckedPointer(q), UncheckedPointer(k))
        Kernels.parallelFor(heads + kvHeads) { index in
            let isQuery = index < heads
            let base = isQuery ? qp.pointer + index * hs : kp.pointer + (index - heads) * hs
            Kernels.rotate(
                base, rows: length, stride: stride, half: tables.pairs,
                cos: isQuery ? tables.queryCos.pointer : tables.keyCos.pointer,
                sin: isQuery ? tables.querySin.pointer : tables.keySin.pointer,
                interleaved: tables.interleaved)
        }
    }

    /// The column ranges the query/key norm normalises as one (offset from the start of q, width) with their gain:
    /// each head's `hs` columns, or all query columns and all key columns.
    static func forEachNormedRow(
        _ norm: BoundQueryKeyNorm, heads: Int, kvHeads: Int, headWidth hs: Int,
        _ body: (_ offset: Int, _ width: Int, _ gamma: UnsafeMutablePointer<Float>) -> Void
    ) {
        guard norm.perHead else {
            body(0, heads * hs, norm.query.pointer)
            body(heads * hs, kvHeads * hs, norm.key.pointer)
            return
        }
        for head in 0..<heads { body(head * hs, hs, norm.query.pointer) }
        for head in 0..<kvHeads { body((heads + head) * hs, hs, norm.key.pointer) }
    }

    static func normalize(_ step: Step, _ x: UnsafeMutablePointer<Float>, rows: Int, stride: Int) {
        switch step {
        case .layerNorm(let gamma, let beta, let epsilon, let width):
            Kernels.layerNorm(
                x, rows: rows, width: width, stride: stride, gamma: gamma.map { UnsafePointer($0.pointer) },
                beta: beta.map { UnsafePointer($0.pointer) }, epsilon: epsilon)
        case .rmsNorm(let gamma, let epsilon, let width):
            Kernels.rmsNorm(x, rows: rows, width: width, stride: stride, gamma: gamma.pointer, epsilon: epsilon)
        default:
            break
        }
    }

    static func addPositions(
        _ encoding: InputPositionEncoding, table: FloatBuffer?, width: Int, length: Int,
        to x: UnsafeMutablePointer<Float>
    ) {
        switch encoding {
        case .learned(_, let offset):
            guard let table else { return }
            Kernels.add(x, table.pointer + offset * width, count: length * width)
        case .sinusoidal(let layout, let offset):
            for t in 0..<length {
                let vector = layout.embedding(position: t + offset, width: width)
                for c in 0..<width { x[t * width + c] += Float(vector[c]) }
            }
        }
    }

    func copy(_ x: Act) -> Act {
        let out = FloatBuffer(uninitialized: length * x.width)
        out.pointer.update(from: x.buffer.pointer, count: length * x.width)
        return Act(buffer: out, width: x.width)
    }

    func sum(_ x: Act, _ y: Act) -> Act {
        let out = copy(x)
        Kernels.add(out.buffer.pointer, y.buffer.pointer, count: length * x.width)
        return out
    }
}

extension Activation {
    var kernel: Kernels.ActivationKind {
        switch self {
        case .gelu: .gelu
        case .geluTanh: .geluTanh
        case .relu: .relu
        case .silu: .silu
        }
    }
}
