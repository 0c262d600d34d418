import Architecture
import Engine
import Foundation
import Kernels

// The backward pass, step by step in reverse (llm.c's `gpt2_backward`): each function takes the gradient of the
// loss with respect to a step's output, adds the gradient of its parameters into `grads` (a bound model of the same
// structure, `BoundModel.zeroedCopy`), and returns the gradient with respect to its input.

struct Backward {
    let length: Int
    var tape: Tape

    /// `d/dx` of the steps whose forward records are `records`, given `dy`; parameter gradients into `grads`.
    mutating func backward(_ steps: [Step], _ grads: [Step], _ records: [Record], _ dy: Act) -> Act {
        var d = dy
        for index in steps.indices.reversed() {
            d = backward(steps[index], grads[index], records[index], d)
        }
        return d
    }

    private mutating func backward(_ step: Step, _ grad: Step, _ record: Record, _ dy: Act) -> Act {
        switch (step, grad, record) {
        case (.residual(.pre, let body), .residual(_, let gradBody), .residual(let records)):
            return tape.sum(dy, backward(body, gradBody, records, dy))
        case (.residual(.post, let body), .residual(_, let gradBody), .residual(let records)):
            var ds = dy
            if let norm = body.last, let gradNorm = gradBody.last, let last = records.last,
                records.count == body.count
            {
                ds = backward(norm, gradNorm, last, dy)
            }
            let inner = Array(body.dropLast()), gradInner = Array(gradBody.dropLast())
            return tape.sum(ds, backward(inner, gradInner, Array(records.prefix(inner.count)), ds))
        case (.parallel(let branches), .parallel(let gradBranches), .parallel(let records)):
            var dx = tape.copy(dy)
            for index in branches.indices {
                dx = tape.sum(dx, backward(branches[index], gradBranches[index], records[index], dy))
            }
            return dx
        case (.positions(.learned(_, let offset), _, let width), .positions(_, let table?, _), _):
            // d table[offset + t] += dy[t]
            Kernels.add(table.pointer + offset * width, dy.buffer.pointer, count: length * width)
            return dy
        case (.positions, _, _):
            return dy
        case (.linear(let p), .linear(let g), .linear(let input)):
            return projection(p, g, input: input, dy)
        case (.layerNorm, _, .norm(let input)), (.rmsNorm, _, .norm(let input)):
            return norm(step, grad, input: input, dy)
        case (.attention(let w), .attention(let g), .attention(let record)):
            return attention(w, g, record, dy)
        case (.feedForward(let w), .feedForward(let g), .feedForward(let input, let up, let gate)):
            return feedForward(w, g, input: input, up: up, gate: gate, dy)
        default:
            preconditionFailure("a record that does not match its step")
        }
    }

    /// `y = x·Wᵀ + b`: `dx = dy·W`, `dW += dyᵀ·x`, `db += Σ_t dy[t]`.
    func projection(_ p: Projection, _ g: Projection, input x: Act, _ dy: Act) -> Act {
        guard case .float(let weight) = p.weight, case .float(let dWeight) = g.weight else {
            preconditionFailure("training binds fp32 weights")
        }
        let dx = FloatBuffer(uninitialized: length * p.input)
        Kernels.gemm(
            dy.buffer.pointer, lda: p.output, transposeA: false, weight.pointer, ldb: p.input, transposeB: false,
            dx.pointer, ldc: p.input, m: length, n: p.input, k: p.output)
        Kernels.gemm(
            dy.buffer.pointer, lda: p.output, transposeA: true, x.buffer.pointer, ldb: x.width, transposeB: false,
            dWeight.pointer, ldc: p.input, m: p.output, n: p.input, k: length, accumulate: true)
        if let db = g.bias { Self.addColumnSums(dy.buffer.pointer, rows: length, width: p.output, into: db.pointer) }
        return Act(buffer: dx, width: p.input)
    }

    static func addColumnSums(
        _ x: UnsafePointer<Float>, rows: Int, width: Int, stride: Int? = nil, into out: UnsafeMutablePointer<Float>
    ) {
        // Columns split between the threads; each column summed over the rows in order.
        let stride = stride ?? width
        let (source, destination) = (UncheckedPointer(UnsafeMutablePointer(mutating: x)), UncheckedPointer(out))
        Kernels.parallelRows(width, minimumChunk: 64) { begin, end in
            var sums = [Double](repeating: 0, count: end - begin)
            for t in 0..<rows {
                let row = source.pointer + t * stride
                for c in begin..<end { sums[c - begin] += Double(row[c]) }
            }
            for c in begin..<end { destination.pointer[c] += Float(sums[c - begin]) }
        }
    }

    /// LayerNorm or RMSNorm over the first `width` columns of each row (the rest pass through).
    private func norm(_ step: Step, _ grad: Step, input x: Act, _ dy: Act) -> Act {
        let dx = tape.copy(dy)
        switch (step, grad) {
        case (.layerNorm(let gamma, _, let epsilon, let width), .layerNorm(let dGamma, let dBeta, _, _)):
            Self.layerNormBackward(
                x.buffer.pointer, dy.buffer.pointer, dx.buffer.pointer, rows: length, width: width, stride: x.width,
                gamma: gamma?.pointer, epsilon: epsilon, dGamma: dGamma?.pointer, dBeta: dBeta?.pointer)
        case (.rmsNorm(let gamma, let epsilon, let width), .rmsNorm(let dGamma, _, _)):
            Self.rmsNormBackward(
                x.buffer.pointer, dy.buffer.pointer, dx.buffer.pointer, rows: length, width: width, stride: x.width,
                gamma: gamma.pointer, epsilon: epsilon, dGamma: dGamma.pointer)
        default:
            break
        }
        return dx
    }

    /// Runs `body(begin, end, partial)` over pieces of 64 rows on all threads, each with its own `parts × width`
    /// partial sums, and adds the pieces' sums into `out[part]` in piece order: the same bits for any thread count.
    static func rowPieces(
        rows: Int, width: Int, into out: [UnsafeMutablePointer<Float>?],
        _ body: (_ begin: Int, _ end: Int, _ partial: UnsafeMutablePointer<Double>) -> Void
    ) {
        let pieceRows = 64, parts = out.count
        let pieces = (rows + pieceRows - 1) / pieceRows
        let partials = UnsafeMutablePointer<Double>.allocate(capacity: max(pieces * parts * width, 1))
        partials.initialize(repeating: 0, count: max(pieces * parts * width, 1))
        defer { partials.deallocate() }
        let shared = UncheckedPointer(partials)
        Kernels.parallelFor(pieces) { piece in
            body(piece * pieceRows, min(rows, (piece + 1) * pieceRows), shared.pointer + piece * parts * width)
        }
        for (part, destination) in out.enumerated() {
            guard let destination else { continue }
            for c in 0..<width {
                var sum = 0.0
                for piece in 0..<pieces { sum += partials[(piece * parts + part) * width + c] }
                destination[c] += Float(sum)
            }
        }
    }

    /// `y = γ ⊙ (x − μ)/σ + β`: `dx = (1/σ)(g − mean(g) − x̂·mean(g ⊙ x̂))` with `g = γ ⊙ dy`.
    static func layerNormBackward(
        _ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, rows: Int,
        width: Int, stride: Int, gamma: UnsafePointer<Float>?, epsilon: Float, dGamma: UnsafeMutablePointer<Float>?,
        dBeta: UnsafeMutablePointer<Float>?
    ) {
        let (px, pdy, pdx) = (
            UncheckedPointer(UnsafeMutablePointer(mutating: x)), UncheckedPointer(UnsafeMutablePointer(mutating: dy)),
            UncheckedPointer(dx)
        )
        let g = gamma.map { UncheckedPointer(UnsafeMutablePointer(mutating: $0)) }
        rowPieces(rows: rows, width: width, into: [dGamma, dBeta]) { begin, end, partial in
            let (sumGamma, sumBeta) = (partial, partial + width)
            for t in begin..<end {
                let row = px.pointer + t * stride, drow = pdy.pointer + t * stride, out = pdx.pointer + t * stride
                var mean = 0.0
                for c in 0..<width { mean += Double(row[c]) }
                mean /= Double(width)
                var variance = 0.0
                for c in 0..<width { variance += (Double(row[c]) - mean) * (Double(row[c]) - mean) }
                variance /= Double(width)
                let rstd = 1 / (variance + Double(epsilon)).squareRoot()
                var meanG = 0.0, meanGX = 0.0
                for c in 0..<width {
                    let xhat = (Double(row[c]) - mean) * rstd
                    let gc = Double(drow[c]) * Double(g?.pointer[c] ?? 1)
                    meanG += gc
                    meanGX += gc * xhat
                    sumGamma[c] += Double(drow[c]) * xhat
                    sumBeta[c] += Double(drow[c])
                }
                meanG /= Double(width)
                meanGX /= Double(width)
                for c in 0..<width {
                    let xhat = (Double(row[c]) - mean) * rstd
                    let gc = Double(drow[c]) * Double(g?.pointer[c] ?? 1)
                    out[c] = Float(rstd * (gc - meanG - xhat * meanGX))
                }
            }
        }
    }

    /// `y = γ ⊙ x / rms(x)`: `dx = (1/rms)(g − x̂·mean(g ⊙ x̂))` with `g = γ ⊙ dy`, `x̂ = x / rms`.
    static func rmsNormBackward(
        _ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, rows: Int,
        width: Int, stride: Int, gamma: UnsafePointer<Float>, epsilon: Float, dGamma: UnsafeMutablePointer<Float>
    ) {
        let (px, pdy, pdx) = (
            UncheckedPointer(UnsafeMutablePointer(mutating: x)), UncheckedPointer(UnsafeMutablePointer(mutating: dy)),
            UncheckedPointer(dx)
        )
        let g = UncheckedPointer(UnsafeMutablePointer(mutating: gamma))
        rowPieces(rows: rows, width: width, into: [dGamma]) { begin, end, sumGamma in
            for t in begin..<end {
                let row = px.pointer + t * stride, drow = pdy.pointer + t * stride, out = pdx.pointer + t * stride
                var square = 0.0
                for c in 0..<width { square += Double(row[c]) * Double(row[c]) }
                let rstd = 1 / (square / Double(width) + Double(epsilon)).squareRoot()
                var meanGX = 0.0
                for c in 0..<width {
                    let xhat = Double(row[c]) * rstd
                    meanGX += Double(drow[c]) * Double(g.pointer[c]) * xhat
                    sumGamma[c] += Double(drow[c]) * xhat
                }
                meanGX /= Double(width)
                for c in 0..<width {
                    let xhat = Double(row[c]) * rstd
                    out[c] = Float(rstd * (Double(drow[c]) * Double(g.pointer[c]) - xhat * meanGX))
                }
            }
        }
    }

    /// `y = down(act(gate) ⊙ up)` or `down(act(up))`.
    private func feedForward(
        _ w: FeedForwardWeights, _ g: FeedForwardWeights, input x: Act, up: FloatBuffer, gate: FloatBuffer?,
        _ dy: Act
    ) -> Act {
        let hiddenWidth = w.up.output
        let count = length * hiddenWidth
        let hidden = Tape.hidden(up: up, gate: gate, count: count, kind: w.node.activation)
        let dh = projection(w.down, g.down, input: Act(buffer: hidden, width: hiddenWidth), dy).buffer
        let kind = w.node.activation
        if let gate, let gateWeights = w.gate, let gateGrads = g.gate {
            // du = dh ⊙ act(gate); dgate = dh ⊙ up ⊙ act'(gate)
            let du = FloatBuffer(uninitialized: count), dg = FloatBuffer(uninitialized: count)
            let activated = Tape.hidden(up: gate, gate: nil, count: count, kind: kind)
            let derivative = Self.derivatives(kind, gate, count: count)
            let (pu, pg, ph, pa, pup, pd) = (
                UncheckedPointer(du.pointer), UncheckedPointer(dg.pointer), UncheckedPointer(dh.pointer),
                UncheckedPointer(activated.pointer), UncheckedPointer(up.pointer), UncheckedPointer(derivative.pointer)
            )
            Kernels.parallelRows(count, minimumChunk: 1 << 14) { begin, end in
                for i in begin..<end {
                    pu.pointer[i] = ph.pointer[i] * pa.pointer[i]
                    pg.pointer[i] = ph.pointer[i] * pup.pointer[i] * pd.pointer[i]
                }
            }
            withExtendedLifetime((derivative, activated)) {}
            let dx = projection(w.up, g.up, input: x, Act(buffer: du, width: hiddenWidth))
            let dxGate = projection(gateWeights, gateGrads, input: x, Act(buffer: dg, width: hiddenWidth))
            return tape.sum(dx, dxGate)
        }
        let derivative = Self.derivatives(kind, up, count: count)
        Kernels.multiply(dh.pointer, by: derivative.pointer, count: count)
        withExtendedLifetime(derivative) {}
        return projection(w.up, g.up, input: x, Act(buffer: dh, width: hiddenWidth))
    }

    /// The activation's derivative at each of `count` values, the values split between the threads; every
    /// transcendental (GELU's erf, the exponentials behind tanh and the sigmoid) through the vectorised kernels.
    static func derivatives(_ kind: Activation, _ x: FloatBuffer, count: Int) -> FloatBuffer {
        let out = FloatBuffer(uninitialized: count)
        let (source, destination) = (UncheckedPointer(x.pointer), UncheckedPointer(out.pointer))
        Kernels.parallelRows(count, minimumChunk: 1 << 14) { begin, end in
            let (x, y, n) = (source.pointer + begin, destination.pointer + begin, end - begin)
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: n)
            defer { scratch.deallocate() }
            switch kind {
            case .gelu:
                // 0.5·(1 + erf(x/√2)) + x·φ(x), φ(x) = e^(−x²/2)/√(2π)
                for i in 0..<n { scratch[i] = x[i] * 0.707_106_77 }
                Kernels.erf(scratch, into: y, count: n)
                for i in 0..<n { scratch[i] = -0.5 * x[i] * x[i] }
                Kernels.exp(scratch, into: scratch, count: n)
                for i in 0..<n { y[i] = 0.5 * (1 + y[i]) + x[i] * scratch[i] * 0.398_942_3 }
            case .geluTanh:
                // t = tanh(u), u = c·(x + 0.044715·x³), as 1 − 2 / (e^(2u) + 1) (e^(2u) = ∞ gives 1, 0 gives −1).
                let c: Float = 0.797_884_56
                for i in 0..<n { scratch[i] = 2 * c * (x[i] + 0.044715 * x[i] * x[i] * x[i]) }
                Kernels.exp(scratch, into: scratch, count: n)
                for i in 0..<n {
                    let t = 1 - 2 / (scratch[i] + 1)
                    y[i] = 0.5 * (1 + t) + 0.5 * x[i] * (1 - t * t) * c * (1 + 3 * 0.044715 * x[i] * x[i])
                }
            case .silu:
                // s = 1 / (1 + e^(−x)); d = s·(1 + x·(1 − s))
                for i in 0..<n { scratch[i] = -x[i] }
                Kernels.exp(scratch, into: scratch, count: n)
                for i in 0..<n {
                    let sigmoid = 1 / (1 + scratch[i])
                    y[i] = sigmoid * (1 + x[i] * (1 - sigmoid))
                }
            case .relu:
                for i in 0..<n { y[i] = x[i] > 0 ? 1 : 0 }
            }
        }
        return out
    }
}
