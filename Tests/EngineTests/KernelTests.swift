import Foundation
import Kernels
import TestSupport
import Testing

/// Plain double-precision causal attention for one head, the definition the fused kernel must reproduce.
func naiveAttention(
    q: [Float], k: [Float], v: [Float], length: Int, heads: Int, kvHeads: Int, hs: Int, scale: Double,
    window: Int?, bias: (Int, Int) -> Double
) -> [Double] {
    var out = [Double](repeating: 0, count: length * heads * hs)
    let group = heads / kvHeads
    for h in 0..<heads {
        let g = h / group
        for i in 0..<length {
            var logits: [(Int, Double)] = []
            for j in 0...i where window.map({ j > i - $0 }) ?? true {
                var dot = 0.0
                for e in 0..<hs { dot += Double(q[(i * heads + h) * hs + e]) * Double(k[(j * kvHeads + g) * hs + e]) }
                logits.append((j, scale * dot + bias(h, i - j)))
            }
            let m = logits.map(\.1).max()!
            let total = logits.reduce(0) { $0 + exp($1.1 - m) }
            for (j, logit) in logits {
                let p = exp(logit - m) / total
                for e in 0..<hs { out[(i * heads + h) * hs + e] += p * Double(v[(j * kvHeads + g) * hs + e]) }
            }
        }
    }
    return out
}

@Suite("Kernels")
struct KernelTests {
    @Test("The vectorised exp is within 2 ulp of exp wherever a float's exp is a normal float, and saturates beyond")
    func expAccuracy() {
        let inputs = stride(from: -87.0, through: 88.0, by: 0.001337).map(Float.init) + [0, -0.0, 1, -1, 88.3, -87.3]
        let fast = Kernels.exp(inputs)
        let worst = zip(inputs, fast).map { x, y in abs(Double(y) / Foundation.exp(Double(x)) - 1) }.max()!
        #expect(worst < 2.5e-7, "max relative error \(worst)")
        #expect(Kernels.exp([0]) == [1])
        // Below the clamp: a tiny positive number (never NaN or a wrong power of two); above it: finite and huge.
        let tiny = Kernels.exp([-100, -1000, -.infinity])
        #expect(tiny.allSatisfy { $0 > 0 && $0 < 1.3e-38 })
        let huge = Kernels.exp([89, 1000, .infinity])
        #expect(huge.allSatisfy { $0.isFinite && $0 > 1e38 })
    }

    @Test("The vectorised erf (GELU's) is within 5e-7 of erf everywhere (measured 4.1e-7)")
    func erfAccuracy() {
        let inputs = stride(from: -9.0, through: 9.0, by: 0.000731).map(Float.init)
        let fast = Kernels.erf(inputs)
        let worst = zip(inputs, fast).map { x, y in abs(Double(y) - Foundation.erf(Double(x))) }.max()!
        #expect(worst < 5e-7, "max absolute error \(worst)")
        #expect(Kernels.erf([0, -0.0, .infinity, -.infinity]) == [0, 0, 1, -1])
    }

    @Test("The vectorised maximum and Float64 sum equal the plain loops at every length around their lanes")
    func maximumAndSum() {
        for count in Array(0...41) + [50257] {
            let values = (0..<count).map { Float(($0 &* 7919 &+ count) % 601) / 10 - 30 }
            values.withUnsafeBufferPointer { x in
                let pointer = x.baseAddress ?? UnsafePointer(bitPattern: 16)!
                #expect(Kernels.maximum(pointer, count: count) == (values.max() ?? -.infinity), "count \(count)")
                let plain = values.reduce(0.0) { $0 + Double($1) }
                let sum = Kernels.sum(pointer, count: count)
                #expect(
                    abs(sum - plain) <= 1e-12 * max(1, values.map { abs(Double($0)) }.reduce(0, +)), "count \(count)")
            }
        }
    }

    @Test(
        "Fused attention equals plain attention (GQA, window, distance bias, odd head widths, ragged tiles)",
        arguments: [
            (200, 4, 2, 80, nil as Int?), (131, 6, 6, 8, 37), (70, 2, 1, 16, nil), (300, 3, 1, 128, 130),
            (260, 2, 1, 24, nil),
            (330, 2, 2, 8, 200),
        ])
    func fusedMatchesNaive(_ length: Int, _ heads: Int, _ kvHeads: Int, _ hs: Int, _ window: Int?) throws {
        var generator = TestRandom(seed: 11)
        func random(_ count: Int) -> [Float] { generator.floats(count, in: -1.5...1.5) }
        let (q, k, v) = (random(length * heads * hs), random(length * kvHeads * hs), random(length * kvHeads * hs))
        let slopes = (0..<heads).map { 0.5 / Double($0 + 1) }
        let table = FloatBuffer(count: heads * length)
        for h in 0..<heads {
            for d in 0..<length { table.pointer[h * length + d] = Float(-slopes[h] * Double(d) + sin(Double(d))) }
        }
        let scale = 1 / Double(hs).squareRoot()
        let out = FloatBuffer(count: length * heads * hs)
        let (qb, kb, vb) = (FloatBuffer(q), FloatBuffer(k), FloatBuffer(v))
        try Kernels.attention(
            q: qb.pointer, qStride: heads * hs, k: kb.pointer, kStride: kvHeads * hs, v: vb.pointer,
            vStride: kvHeads * hs, out: out.pointer, outStride: heads * hs,
            shape: AttentionShape(
                length: length, heads: heads, kvHeads: kvHeads, headWidth: hs,
                scale: Float(scale), window: window),
            bias: .distance(table))
        let expected = naiveAttention(
            q: q, k: k, v: v, length: length, heads: heads, kvHeads: kvHeads, hs: hs, scale: scale,
            window: window
        ) { h, d in Double(table.pointer[h * length + d]) }
        let worst = zip(out.array, expected).map { abs(Double($0) - $1) }.max()!
        #expect(worst < 2e-5, "max |Δ| = \(worst)")
    }

    @Test(
        "Tiles skipped under a steep distance bias change nothing: far keys a bias lifts again are still seen",
        arguments: [nil as Int?, 500])
    func negligibleTilesSkipped(_ window: Int?) throws {
        // Slopes of 1 and 1/4 per token put most keys thousands below the row maximum, so whole 64-key tiles are
        // skipped; one distance per head (601 + 7h) has bias 0 again, as a T5 table's far bucket can. A bound read
        // at a tile's nearest distance instead of the largest bias at or beyond it would skip that key's tile, and
        // its term weighs as much as the diagonal's.
        let (length, heads, hs) = (700, 2, 64)
        var generator = TestRandom(seed: 5)
        func random(_ count: Int) -> [Float] { generator.floats(count, in: -1.5...1.5) }
        let (q, k, v) = (random(length * heads * hs), random(length * hs), random(length * hs))
        let table = FloatBuffer(count: heads * length)
        for h in 0..<heads {
            for d in 0..<length {
                table.pointer[h * length + d] = d == 601 + 7 * h ? 0 : -Float(d) / Float(1 << (2 * h))
            }
        }
        let scale = 1 / Double(hs).squareRoot()
        let out = FloatBuffer(count: length * heads * hs)
        let (qb, kb, vb) = (FloatBuffer(q), FloatBuffer(k), FloatBuffer(v))
        try Kernels.attention(
            q: qb.pointer, qStride: heads * hs, k: kb.pointer, kStride: hs, v: vb.pointer, vStride: hs,
            out: out.pointer, outStride: heads * hs,
            shape: AttentionShape(
                length: length, heads: heads, kvHeads: 1, headWidth: hs, scale: Float(scale), window: window),
            bias: .distance(table))
        let expected = naiveAttention(
            q: q, k: k, v: v, length: length, heads: heads, kvHeads: 1, hs: hs, scale: scale, window: window
        ) { h, d in Double(table.pointer[h * length + d]) }
        let worst = zip(out.array, expected).map { abs(Double($0) - $1) }.max()!
        #expect(worst < 2e-5, "max |Δ| = \(worst)")
    }

    @Test(
        "Parallel work hands every item to exactly one worker, whatever the thread count",
        arguments: [1, 2, 3, 8])
    func parallelWork(_ threads: Int) {
        KernelThreads.exclusive(threads: threads) { parallelWorkBody(threads) }
    }

    func parallelWorkBody(_ threads: Int) {
        for count in [0, 1, 5, 1000] {
            let seen = UnsafeMutablePointer<Int>.allocate(capacity: max(count, 1))
            seen.initialize(repeating: 0, count: max(count, 1))
            defer { seen.deallocate() }
            let workers = UnsafeMutablePointer<Int>.allocate(capacity: max(count, 1))
            defer { workers.deallocate() }
            let (s, w) = (UncheckedPointer(seen), UncheckedPointer(workers))
            Kernels.parallelWork(count) { worker, item in
                s.pointer[item] += 1
                w.pointer[item] = worker
            }
            #expect((0..<count).allSatisfy { seen[$0] == 1 }, "\(count) items on \(threads) threads")
            #expect((0..<count).allSatisfy { (0..<threads).contains(workers[$0]) })
        }
    }

    @Test("Row-split matrix products equal one sgemm call; transpose is exact", arguments: [1, 2, 3])
    func products(_ threads: Int) {
        KernelThreads.exclusive(threads: threads) { productsBody() }
    }

    func productsBody() {
        let (m, n, k) = (1500, 37, 29)
        let a = FloatBuffer((0..<(m * k)).map { Float(sin(Double($0) * 0.11)) })
        let b = FloatBuffer((0..<(n * k)).map { Float(cos(Double($0) * 0.07)) })
        let split = FloatBuffer(count: m * n), whole = FloatBuffer(count: m * n)
        Kernels.matmulTransposed(a.pointer, lda: k, b.pointer, ldb: k, split.pointer, ldc: n, m: m, n: n, k: k)
        Kernels.serialMatmulTransposed(a.pointer, lda: k, b.pointer, ldb: k, whole.pointer, ldc: n, m: m, n: n, k: k)
        var worst = 0.0
        for i in 0..<m {
            for j in 0..<n {
                var dot = 0.0
                for e in 0..<k { dot += Double(a.pointer[i * k + e]) * Double(b.pointer[j * k + e]) }
                worst = max(worst, abs(Double(split.pointer[i * n + j]) - dot))
            }
        }
        #expect(worst < 1e-4, "max |Δ| against double precision \(worst)")
        #expect(zip(split.array, whole.array).allSatisfy { abs($0 - $1) <= 1e-5 })
        let transposed = FloatBuffer(count: m * k)
        Kernels.transpose(a.pointer, rows: m, columns: k, into: transposed.pointer)
        #expect(
            (0..<m).allSatisfy { i in (0..<k).allSatisfy { e in transposed.pointer[e * m + i] == a.pointer[i * k + e] }
            })
    }

    @Test("Log-softmax gather matches a double-precision log-softmax and flags foreign targets")
    func logSoftmax() {
        let vocabulary = 1000
        let logits = (0..<(3 * vocabulary)).map { Float(sin(Double($0) * 0.37) * 12) }
        let targets: [Int32] = [5, 999, 1000]
        var out = [Double](repeating: 0, count: 3)
        logits.withUnsafeBufferPointer { l in
            targets.withUnsafeBufferPointer { t in
                out.withUnsafeMutableBufferPointer { o in
                    Kernels.logSoftmaxGather(
                        l.baseAddress!, rows: 3, vocabulary: vocabulary, targets: t.baseAddress!, into: o.baseAddress!)
                }
            }
        }
        for row in 0..<2 {
            let values = logits[(row * vocabulary)..<((row + 1) * vocabulary)].map(Double.init)
            let m = values.max()!
            let expected = values[Int(targets[row])] - m - log(values.reduce(0) { $0 + exp($1 - m) })
            #expect(abs(out[row] - expected) < 1e-5)
        }
        #expect(out[2].isNaN)
    }
}

@Suite("Row blocks")
struct RowBlockTests {
    @Test(
        "Row blocks cover the rows in order, are fixed by position, and end at every trained length times 2^k",
        arguments: [1, 2, 3, 8])
    func fixedByPosition(_ threads: Int) {
        KernelThreads.exclusive(threads: threads) {
            for base in [1, 32, 100, 512, 2048] {
                let longest = Kernels.rowBlocks(rows: 40 * base + 17, base: base)
                for rows in [1, base / 2 + 1, base, 3 * base, 8 * base, 40 * base + 17] where rows >= base {
                    let blocks = Kernels.rowBlocks(rows: rows, base: base)
                    // Contiguous from 0 to rows.
                    #expect(blocks.first?.lowerBound == 0 && blocks.last?.upperBound == rows)
                    #expect(zip(blocks, blocks.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
                    // The blocks of a shorter pass are those of the longest pass, the last one cut at its end.
                    #expect(Array(blocks.dropLast()) == Array(longest.prefix(blocks.count - 1)))
                    #expect(blocks.allSatisfy { $0.count <= 1024 })
                }
                // Shorter than the trained length: split evenly between the threads.
                for rows in [1, 5, base / 2 + 1, base - 1] where rows >= 1 && rows < base {
                    let blocks = Kernels.rowBlocks(rows: rows, base: base)
                    #expect(blocks.first?.lowerBound == 0 && blocks.last?.upperBound == rows)
                    #expect(blocks.count == min(threads, rows) || blocks.allSatisfy { $0.count <= 1024 })
                }
                for k in 0..<6 {
                    #expect(Kernels.rowBlocksShare(prefix: base << k, of: base << (k + 1), base: base))
                    #expect(Kernels.rowBlocksShare(prefix: base << k, of: 40 * base + 17, base: base))
                }
                // A limit refines the blocks: every boundary stays.
                let limited = Set(Kernels.rowBlocks(rows: 8 * base, base: base, limit: 37).map(\.upperBound))
                let lost = Set(Kernels.rowBlocks(rows: 8 * base, base: base).map(\.upperBound)).subtracting(limited)
                #expect(lost.isEmpty, "boundaries lost to the limit: \(lost.sorted())")
            }
            // Not a boundary: a shorter pass's last block would be cut short where the longer pass's is whole.
            #expect(!Kernels.rowBlocksShare(prefix: 300, of: 1024, base: 512))
        }
    }
}

@Suite("Buffers")
struct BufferTests {
    @Test("A zeroed buffer is zero even when it reuses a freed block of the same size")
    func reusedBlocksAreZeroedWhenAskedTo() {
        let count = 300_000  // above the size freed blocks are kept from
        for _ in 0..<4 {
            var dirty: FloatBuffer? = FloatBuffer(uninitialized: count)
            dirty!.pointer.initialize(repeating: 7, count: count)
            dirty = nil
            let clean = FloatBuffer(count: count)
            #expect(UnsafeBufferPointer(start: clean.pointer, count: count).allSatisfy { $0 == 0 })
        }
    }
}
