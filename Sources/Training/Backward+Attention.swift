import Architecture
import Engine
import Foundation
import Kernels

// Attention's backward pass. The forward kernel keeps no probabilities; they are recomputed here from the saved q, k
// in tiles of 64 query rows against the keys those rows see (FlashAttention's backward), so memory stays linear in
// T; the tile's five products go to BLAS:
//
//     s_j  = c·tanh(scale·q·k_j / c) (soft cap c, or scale·q·k_j) + bias(i − j),  p = softmax(s) over visible j
//     D    = dO·O                            (= Σ_j p_j dO·v_j)
//     dS_j = p_j (dO·v_j − D)
//     dv_j += p_j dO,   dq += scale·Σ_j dS'_j k_j,   dk_j += scale·dS'_j q,   dbias(i − j) += dS_j
//
// with dS' = dS·(1 − tanh²) under a soft cap. Work is split by key/value head, so the query heads sharing keys
// (grouped-query attention) add into dk and dv from one thread.

extension Backward {
    mutating func attention(_ w: AttentionWeights, _ g: AttentionWeights, _ r: AttentionRecord, _ dy: Act) -> Act {
        let (h, kv, hs) = (w.heads, w.kvHeads, w.headWidth)
        let dOut = projection(w.output, g.output, input: Act(buffer: r.out, width: h * hs), dy).buffer  // [T, H·hs]
        let stride = (h + 2 * kv) * hs
        let dqkv = FloatBuffer(count: length * stride)
        var distance: FloatBuffer? = nil
        if case .distance = r.bias { distance = FloatBuffer(count: h * length) }
        let fire = core(w, r, dOut: dOut, dqkv: dqkv, dDistance: distance)
        if let distance { positionGradients(w.position, g.position, dDistance: distance) }
        if let fire, case .fire(let method, let weights) = w.position, case .fire(_, let grads) = g.position {
            fireGradients(method, weights, grads, fire)
        }
        if let tables = tape.rotation(for: w.position, headWidth: hs) {
            // The transposed rotation (xPos's scales ride on cos and sin alike).
            Tape.rotate(
                dqkv.pointer, dqkv.pointer + h * hs, stride: stride, heads: h, kvHeads: kv, headWidth: hs,
                length: length, tables.transposed)
        }
        if let norm = w.queryKeyNorm, let dNorm = g.queryKeyNorm, let projected = r.projected {
            // Each normalised range's gradient, in place; its gain's gradient into the matching range's gain.
            var ranges: [(Int, Int, UnsafeMutablePointer<Float>)] = []
            Tape.forEachNormedRow(norm, heads: h, kvHeads: kv, headWidth: hs) { ranges.append(($0, $1, $2)) }
            var gradRanges: [UnsafeMutablePointer<Float>] = []
            Tape.forEachNormedRow(dNorm, heads: h, kvHeads: kv, headWidth: hs) { _, _, gain in gradRanges.append(gain) }
            let before = FloatBuffer(uninitialized: length * stride)
            before.pointer.update(from: dqkv.pointer, count: length * stride)
            for ((offset, width, gamma), dGamma) in zip(ranges, gradRanges) {
                Self.rmsNormBackward(
                    projected.pointer + offset, before.pointer + offset, dqkv.pointer + offset, rows: length,
                    width: width, stride: stride, gamma: gamma, epsilon: norm.epsilon, dGamma: dGamma)
            }
        }
        return projection(w.qkv, g.qkv, input: r.input, Act(buffer: dqkv, width: stride))
    }

    /// dq, dk, dv into `dqkv` (same layout as `r.qkv`), and `dDistance[h·T + d]` for a distance bias; for FIRE, the
    /// gradients of its MLP and of its two tables, one accumulator per worker.
    private func core(
        _ w: AttentionWeights, _ r: AttentionRecord, dOut: FloatBuffer, dqkv: FloatBuffer, dDistance: FloatBuffer?
    ) -> [FireAccumulator]? {
        let (h, kv, hs, T) = (w.heads, w.kvHeads, w.headWidth, length)
        let stride = (h + 2 * kv) * hs
        let group = h / kv
        let scale = w.scale
        let cap = w.node.softcap.map { Float($0) }
        let window = w.node.window
        var table: UnsafeMutablePointer<Float>? = nil
        if case .distance(let values) = r.bias { table = values.pointer }
        let biasTable = table.map { UncheckedPointer($0) }
        let (qkv, out, dO, dq) = (
            UncheckedPointer(r.qkv.pointer), UncheckedPointer(r.out.pointer), UncheckedPointer(dOut.pointer),
            UncheckedPointer(dqkv.pointer)
        )
        let dBias = dDistance.map { UncheckedPointer($0.pointer) }
        var fireTables: FireTables? = nil
        if case .fire(let tables) = r.bias { fireTables = tables }
        let accumulators = fireTables.map { f in (0..<kv).map { _ in FireAccumulator(f, heads: h, length: T) } }
        Kernels.parallelFor(kv) { kvHead in
            let fire = accumulators?[kvHead]
            let k = qkv.pointer + (h + kvHead) * hs, v = qkv.pointer + (h + kv + kvHead) * hs
            let dk = dq.pointer + (h + kvHead) * hs, dv = dq.pointer + (h + kv + kvHead) * hs
            // One tile of at most 64 query rows against the keys they may see: scores, probabilities and their
            // gradient, `rows × keys` floats (never T × T).
            let tile = 64
            let p = FloatBuffer(uninitialized: tile * T), g = FloatBuffer(uninitialized: tile * T)
            let t = cap == nil ? nil : FloatBuffer(uninitialized: tile * T)
            for head in kvHead * group..<(kvHead + 1) * group {
                let q = qkv.pointer + head * hs, o = out.pointer + head * hs
                let dOh = dO.pointer + head * hs, dQh = dq.pointer + head * hs
                for i0 in Swift.stride(from: 0, to: T, by: tile) {
                    let i1 = min(i0 + tile, T), rows = i1 - i0
                    let j0 = window.map { max(0, i0 - $0 + 1) } ?? 0
                    let keys = i1 - j0
                    // S = scale · Q Kᵀ (soft-capped), + bias; then each row's softmax over its visible keys.
                    Kernels.serialMatmulTransposed(
                        q + i0 * stride, lda: stride, k + j0 * stride, ldb: stride, p.pointer, ldc: keys, m: rows,
                        n: keys, k: hs)
                    // dP = dO Vᵀ
                    Kernels.serialMatmulTransposed(
                        dOh + i0 * h * hs, lda: h * hs, v + j0 * stride, ldb: stride, g.pointer, ldc: keys, m: rows,
                        n: keys, k: hs)
                    for r in 0..<rows {
                        let i = i0 + r
                        let row = p.pointer + r * keys, dp = g.pointer + r * keys
                        let lo = (window.map { max(0, i - $0 + 1) } ?? 0) - j0, hi = i - j0  // visible columns
                        // Each pass a plain loop over the visible columns (so it vectorises), the optional ones
                        // only for the models that have them.
                        let visible = row + lo, count = hi - lo + 1
                        for c in lo...hi { row[c] *= scale }
                        if let cap, let t {
                            for c in lo...hi {
                                let tanh = Foundation.tanh(row[c] / cap)
                                t.pointer[r * keys + c] = tanh
                                row[c] = cap * tanh
                            }
                        }
                        if let biasTable {
                            let bias = biasTable.pointer + head * T + i - j0
                            for c in lo...hi { row[c] += bias[-c] }
                        }
                        if let fire {
                            for c in lo...hi { row[c] += fire.bias(head: head, query: i, distance: i - j0 - c) }
                        }
                        let maximum = Kernels.maximum(visible, count: count)
                        for c in lo...hi { row[c] -= maximum }
                        Kernels.exp(visible, into: visible, count: count)  // vectorised
                        let inverse = Float(1 / Kernels.sum(visible, count: count))
                        var D: Float = 0  // dO·O = Σ_j p_j dO·v_j
                        for e in 0..<hs { D += dOh[i * h * hs + e] * o[i * h * hs + e] }
                        for c in 0..<lo { (row[c], dp[c]) = (0, 0) }
                        // dp becomes dS = P ⊙ (dP − D), then the gradient of the raw scores.
                        for c in lo...hi {
                            row[c] *= inverse
                            dp[c] = row[c] * (dp[c] - D)
                        }
                        if let dBias {
                            let bias = dBias.pointer + head * T + i - j0
                            for c in lo...hi { bias[-c] += dp[c] }
                        }
                        if let fire {
                            for c in lo...hi { fire.backward(head: head, query: i, distance: i - j0 - c, dp[c]) }
                        }
                        for c in lo...hi { dp[c] *= scale }
                        if let t {
                            for c in lo...hi { dp[c] *= 1 - t.pointer[r * keys + c] * t.pointer[r * keys + c] }
                        }
                        for c in (hi + 1)..<max(hi + 1, keys) { (row[c], dp[c]) = (0, 0) }
                    }
                    // dQ += G K, dK += Gᵀ Q, dV += Pᵀ dO (G: the scores' gradient before the scale)
                    Kernels.gemm(
                        g.pointer, lda: keys, transposeA: false, k + j0 * stride, ldb: stride, transposeB: false,
                        dQh + i0 * stride, ldc: stride, m: rows, n: hs, k: keys, accumulate: true)
                    Kernels.gemm(
                        g.pointer, lda: keys, transposeA: true, q + i0 * stride, ldb: stride, transposeB: false,
                        dk + j0 * stride, ldc: stride, m: keys, n: hs, k: rows, accumulate: true)
                    Kernels.gemm(
                        p.pointer, lda: keys, transposeA: true, dOh + i0 * h * hs, ldb: h * hs, transposeB: false,
                        dv + j0 * stride, ldc: stride, m: keys, n: hs, k: rows, accumulate: true)
                }
            }
        }
        return accumulators
    }

    /// FIRE's parameters from the workers' accumulators. With `x = ψ(d)·n(i)`, `ψ(d) = ln(|c|·d + 1)`,
    /// `n(i) = 1 / (ln(|c|·max(i, θ) + 1) + ε)` and `θ = |m·L_init|`: `∂ψ/∂|c| = d / (|c|·d + 1)`,
    /// `∂n/∂|c| = −n²·M / (|c|·M + 1)` with `M = max(i, θ)`, and `∂n/∂θ = −n²·|c| / (|c|·θ + 1)` where θ is the
    /// larger (half of it at a tie, as torch.maximum's gradient splits).
    private func fireGradients(_ method: Fire, _ w: FireWeights, _ g: FireWeights, _ workers: [FireAccumulator]) {
        let hidden = method.hidden
        var dLog = [Double](repeating: 0, count: length), dInverse = [Double](repeating: 0, count: length)
        for worker in workers {
            for k in 0..<hidden {
                g.w1.pointer[k] += Float(worker.dw1[k])
                g.b1.pointer[k] += Float(worker.db1[k])
            }
            for index in 0..<worker.dw2.count { g.w2.pointer[index] += Float(worker.dw2[index]) }
            for head in 0..<worker.db2.count { g.b2.pointer[head] += Float(worker.db2[head]) }
            for d in 0..<length {
                dLog[d] += worker.dLog[d]
                dInverse[d] += worker.dInverse[d]
            }
        }
        let c = Double(w.c.pointer[0]), multiplier = Double(w.multiplier.pointer[0])
        let a = abs(c), threshold = abs(multiplier * method.initialThreshold)
        var dA = 0.0, dThreshold = 0.0
        for d in 0..<length { dA += dLog[d] * Double(d) / (a * Double(d) + 1) }
        for i in 0..<length {
            let m = max(Double(i), threshold)
            let n = 1 / (log(a * m + 1) + method.epsilon)
            dA += dInverse[i] * -n * n * m / (a * m + 1)
            let share = threshold > Double(i) ? 1 : (threshold == Double(i) ? 0.5 : 0)
            dThreshold += share * dInverse[i] * -n * n * a / (a * threshold + 1)
        }
        g.c.pointer[0] += Float(dA * (c < 0 ? -1 : 1))
        let product = multiplier * method.initialThreshold
        g.multiplier.pointer[0] += Float(dThreshold * (product < 0 ? -1 : 1) * method.initialThreshold)
    }

    /// The gradient of the distance bias `dDistance[h·T + d]` into the position method's parameters.
    private func positionGradients(_ position: BoundPosition, _ grad: BoundPosition, dDistance: FloatBuffer) {
        let (T, d) = (length, dDistance.pointer)
        switch (position, grad) {
        case (.t5(let t5, let table), .t5(_, let dTable)):
            let heads = table.count / max(t5.buckets, 1)
            for distance in 0..<T {
                let bucket = t5.bucket(relative: -distance)
                for head in 0..<heads { dTable.pointer[bucket * heads + head] += d[head * T + distance] }
            }
        case (.kerple(let kerple, let r1, let r2), .kerple(_, let dr1, let dr2)):
            for head in 0..<r1.count {
                // The reference clamps r1, r2 ≥ 0.01 (and the power kernel's r2 ≤ 2): no gradient where clamped.
                let a = Double(r1.pointer[head]), b = Double(r2.pointer[head])
                let (ca, cb) = (max(a, 0.01), kerple.kernel == .power ? min(max(b, 0.01), 2) : max(b, 0.01))
                var (ga, gb) = (0.0, 0.0)
                for distance in 0..<T {
                    let g = Double(d[head * T + distance]), x = Double(distance)
                    switch kerple.kernel {
                    case .logarithmic:
                        ga += g * -log(1 + cb * x)
                        gb += g * -ca * x / (1 + cb * x)
                    case .power:
                        let power = pow(x, cb)
                        ga += g * -power
                        if distance > 0 { gb += g * -ca * power * log(x) }
                    }
                }
                if a >= 0.01 { dr1.pointer[head] += Float(ga) }
                if b >= 0.01, kerple.kernel != .power || b <= 2 { dr2.pointer[head] += Float(gb) }
            }
        default:
            break  // ALiBi and Sandwich have no parameters
        }
    }
}

/// One worker's share of FIRE's gradients: the bias MLP `b(h, i, j) = b2[h] + Σ_k w2[h, k]·relu(w1[k]·x + b1[k])`,
/// `x = ψ(i − j)·n(i)` (the forward kernel's tables), and the gradients of ψ and n.
final class FireAccumulator: @unchecked Sendable {
    let tables: FireTables
    let heads: Int
    var dw1: [Double], db1: [Double], dw2: [Double], db2: [Double]
    var dLog: [Double], dInverse: [Double]

    init(_ tables: FireTables, heads: Int, length: Int) {
        self.tables = tables
        self.heads = heads
        dw1 = Array(repeating: 0, count: tables.hidden)
        db1 = Array(repeating: 0, count: tables.hidden)
        dw2 = Array(repeating: 0, count: heads * tables.hidden)
        db2 = Array(repeating: 0, count: heads)
        dLog = Array(repeating: 0, count: length)
        dInverse = Array(repeating: 0, count: length)
    }

    func bias(head: Int, query i: Int, distance d: Int) -> Float {
        let x = tables.logDistance.pointer[d] * tables.inverseNormalizer.pointer[i]
        var sum = tables.b2.pointer[head]
        for k in 0..<tables.hidden {
            let z = tables.w1.pointer[k] * x + tables.b1.pointer[k]
            if z > 0 { sum += tables.w2.pointer[head * tables.hidden + k] * z }
        }
        return sum
    }

    func backward(head: Int, query i: Int, distance d: Int, _ ds: Float) {
        let (log, inverse) = (tables.logDistance.pointer[d], tables.inverseNormalizer.pointer[i])
        let x = log * inverse
        let g = Double(ds)
        db2[head] += g
        var dx = 0.0
        for k in 0..<tables.hidden {
            let z = tables.w1.pointer[k] * x + tables.b1.pointer[k]
            guard z > 0 else { continue }
            dw2[head * tables.hidden + k] += g * Double(z)
            let dz = g * Double(tables.w2.pointer[head * tables.hidden + k])
            dw1[k] += dz * Double(x)
            db1[k] += dz
            dx += dz * Double(tables.w1.pointer[k])
        }
        dLog[d] += dx * Double(inverse)
        dInverse[i] += dx * Double(log)
    }
}
