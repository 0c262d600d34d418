import CKernels
import Foundation
import Kernels
import TestSupport
import Testing

/// The products of `--precision bf16` against their definition: the fp32 (here double) product of the operands
/// rounded to bfloat16 (round to nearest even), on shapes that cut every block and tail of the kernel.
@Suite("BF16 products")
struct BF16Products {
    /// fp32 → bfloat16 → fp32, as the definition says (independent of the kernel's own rounding).
    static func rounded(_ x: Float) -> Double {
        let bits = x.bitPattern
        let up = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
        return Double(Float(bitPattern: up & 0xFFFF_0000))
    }

    @Test("Rounding to bfloat16 is nearest-even, and NaN stays NaN")
    func rounding() {
        for value: Float in [1, -1, 1.00390625, 1.0078125, 3.14159, -2.5e-30, 6.5e30, 1e-40] {
            let mine = Float(bitPattern: UInt32(ck_bf16_round(value)) << 16)
            #expect(Double(mine) == Self.rounded(value), "\(value)")
        }
        // Halfway cases go to the even neighbour: 1 + 2⁻⁸ lies between 1 and 1 + 2⁻⁷.
        #expect(ck_bf16_round(1 + 0x1p-8) == ck_bf16_round(1))
        #expect(ck_bf16_round(1 + 3 * 0x1p-8) == ck_bf16_round(1 + 0x1p-6))
        #expect(Float(bitPattern: UInt32(ck_bf16_round(.nan)) << 16).isNaN)
    }

    @Test(
        "C = A·Bᵀ (+ bias, + C) equals the double product of the bf16-rounded operands, in cache or streamed",
        arguments: [(13, 37, 33), (8, 32, 1030), (70, 100, 64), (1, 5, 7), (65, 96, 513), (9, 2100, 2050)])
    // The last shape's packed matrix (8.7 MB) takes the blocking of matrices that do not stay in cache.
    func productsMatchTheirDefinition(shape: (Int, Int, Int)) throws {
        guard Kernels.hasBF16Products else {
            print("skipped: this CPU has no AVX512-BF16 (or the avx512 kernel set is not in use)")
            return
        }
        let (m, n, k) = shape
        var generator = TestRandom(seed: UInt64(m * 1000 + n * 10 + k))
        let a = (0..<m * k).map { _ in Float.random(in: -1...1, using: &generator) }
        let b = (0..<n * k).map { _ in Float.random(in: -0.5...0.5, using: &generator) }
        let bias = (0..<n).map { _ in Float.random(in: -1...1, using: &generator) }
        let start = (0..<m * n).map { _ in Float.random(in: -1...1, using: &generator) }
        let packed = b.withUnsafeBufferPointer { PackedBF16(.float($0.baseAddress!), rows: n, columns: k) }
        let (ra, rb) = (a.map(Self.rounded), b.map(Self.rounded))
        var dots = [Double](repeating: 0, count: m * n)  // the product of the rounded operands, in double
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0
                for e in 0..<k { sum += ra[i * k + e] * rb[j * k + e] }
                dots[i * n + j] = sum
            }
        }
        for (withBias, accumulate) in [(false, false), (true, false), (false, true), (true, true)] {
            // Columns from the second panel on when there is one: column0 picks a panel.
            for column0 in n > 32 ? [0, 32] : [0] {
                let columns = n - column0
                var c = start
                a.withUnsafeBufferPointer { a in
                    bias.withUnsafeBufferPointer { bias in
                        Kernels.bf16Linear(
                            a.baseAddress!, lda: k, packed, column0: column0,
                            bias: withBias ? bias.baseAddress! + column0 : nil, &c, ldc: n, m: m, n: columns,
                            accumulate: accumulate)
                    }
                }
                var worst = 0.0
                for i in 0..<m {
                    for j in 0..<columns {
                        var expected = accumulate ? Double(start[i * n + j]) : 0
                        if withBias { expected += Double(bias[column0 + j]) }
                        expected += dots[i * n + column0 + j]
                        worst = max(worst, abs(Double(c[i * n + j]) - expected))
                    }
                    for j in columns..<n { #expect(c[i * n + j] == start[i * n + j], "wrote past its columns") }
                }
                // Each of k products of magnitude ≤ 0.5 accumulated in fp32: ≤ k·2⁻²⁴·(Σ|terms|) with room.
                #expect(
                    worst <= Double(k) * 0x1p-22,
                    "m \(m) n \(n) k \(k) bias \(withBias) acc \(accumulate) col \(column0): \(worst)")
            }
        }
    }
}

/// Attention under `--precision bf16`: the full tiles' products take bfloat16 q, k, v and probabilities. Against
/// plain attention over the bf16-rounded q, k and v, what is left is rounding; against the fp32 kernel, the result
/// must differ (the bf16 path ran).
@Suite("BF16 attention")
struct BF16Attention {
    @Test(
        "Fused bf16 attention equals plain attention over the rounded operands, to the probabilities' rounding",
        arguments: [(300, 2, 1, 64, nil as Int?), (200, 4, 2, 80, nil), (260, 2, 2, 37, 150), (330, 3, 1, 128, nil)])
    func matchesPlainAttention(_ length: Int, _ heads: Int, _ kvHeads: Int, _ hs: Int, _ window: Int?) throws {
        guard Kernels.hasBF16Products else {
            print("skipped: this CPU has no AVX512-BF16 (or the avx512 kernel set is not in use)")
            return
        }
        var generator = TestRandom(seed: UInt64(length * 31 + hs))
        func random(_ count: Int) -> [Float] {
            (0..<count).map { _ in Float.random(in: -1.5...1.5, using: &generator) }
        }
        let (q, k, v) = (random(length * heads * hs), random(length * kvHeads * hs), random(length * kvHeads * hs))
        let table = FloatBuffer(count: heads * length)
        for h in 0..<heads {
            for d in 0..<length { table.pointer[h * length + d] = Float(-0.3 / Double(h + 1) * Double(d)) }
        }
        let scale = 1 / Double(hs).squareRoot()
        func run(bf16: Bool) throws -> [Float] {
            let out = FloatBuffer(count: length * heads * hs)
            let (qb, kb, vb) = (FloatBuffer(q), FloatBuffer(k), FloatBuffer(v))
            try Kernels.attention(
                q: qb.pointer, qStride: heads * hs, k: kb.pointer, kStride: kvHeads * hs, v: vb.pointer,
                vStride: kvHeads * hs, out: out.pointer, outStride: heads * hs,
                shape: AttentionShape(
                    length: length, heads: heads, kvHeads: kvHeads, headWidth: hs, scale: Float(scale),
                    window: window, bf16: bf16),
                bias: .distance(table))
            return out.array
        }
        let (half, exact) = (try run(bf16: true), try run(bf16: false))
        let round = { (x: [Float]) in x.map { Float(BF16Products.rounded($0)) } }
        let expected = naiveAttention(
            q: round(q), k: round(k), v: round(v), length: length, heads: heads, kvHeads: kvHeads, hs: hs,
            scale: scale, window: window
        ) { h, d in Double(table.pointer[h * length + d]) }
        let worst = zip(half, expected).map { abs(Double($0) - $1) }.max()!
        // Each output is a convex combination of values ≤ 1.5. Full tiles round the weights (2⁻⁹ relative each); the
        // diagonal and window-edge tiles stay fp32 over the unrounded q, k, v, which the reference rounded: together
        // a few 2⁻⁹ · 1.5 (measured 0.0043–0.0062). A layout or pairing mistake moves outputs by tenths.
        #expect(worst < 1.5 * 0x1p-6, "max |Δ| against the rounded operands = \(worst)")
        let moved = zip(half, exact).map { abs($0 - $1) }.max()!
        #expect(moved > 0, "the bf16 path did not run")
    }
}
