import Foundation
import Testing
import TestSupport

@testable import Architecture

/// The property tests of spec §13 and comparisons with transformers' own functions.
@Suite("Position encodings keep their invariants and agree with transformers")
struct PositionPropertyTests {
    static let vectorQ = (0..<16).map { sin(Double($0) * 1.3) }
    static let vectorK = (0..<16).map { cos(Double($0) * 0.7) }

    static func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

    @Test(
        "Rotary preserves the norm and depends only on m − n, in both layouts",
        arguments: [RotaryLayout.halfSplit, .interleaved])
    func rotaryRelative(layout: RotaryLayout) {
        let rotary = Rotary(width: .fraction(0.5), layout: layout)
        let f = rotary.frequencies(headWidth: 16, length: 4096)
        let q = rotary.rotate(Self.vectorQ, position: 37, frequencies: f)
        #expect(abs(Self.dot(q, q) - Self.dot(Self.vectorQ, Self.vectorQ)) < 1e-12)
        let base = Self.dot(q, rotary.rotate(Self.vectorK, position: 11, frequencies: f))
        for shift in [1, 100, 3000] {
            let shifted = Self.dot(
                rotary.rotate(Self.vectorQ, position: 37 + shift, frequencies: f),
                rotary.rotate(Self.vectorK, position: 11 + shift, frequencies: f))
            #expect(abs(shifted - base) < 1e-9, "shift \(shift)")
        }
        #expect(Array(q[8...]) == Array(Self.vectorQ[8...]), "dimensions past d_rot pass through")
    }

    @Test("Half-split rotary equals interleaved rotary under the per-head row permutation")
    func layoutPermutation() {
        let d = 16
        let permutation = (0..<d / 2).flatMap { [$0, $0 + d / 2] }  // interleaved slot 2k ← half slot k, 2k+1 ← k + d/2
        let half = Rotary(layout: .halfSplit), interleaved = Rotary(layout: .interleaved)
        let f = half.frequencies(headWidth: d, length: 100)
        let x = Self.vectorQ
        let rotatedHalf = half.rotate(x, position: 9, frequencies: f)
        let rotatedInterleaved = interleaved.rotate(permutation.map { x[$0] }, position: 9, frequencies: f)
        expectClose(rotatedInterleaved, permutation.map { rotatedHalf[$0] }, tolerance: 1e-12, "P·rope_half(x)")
    }

    @Test("xPos logits depend only on m − n")
    func xposRelative() {
        let xpos = XPos(scaleBase: 64)
        func logit(_ n: Int, _ m: Int, length: Int) -> Double {
            let rotary = xpos.rotary
            let f = rotary.frequencies(headWidth: 16, length: length)
            var q = rotary.rotate(Self.vectorQ, position: n, frequencies: f)
            var k = rotary.rotate(Self.vectorK, position: m, frequencies: f)
            for pair in 0..<8 {
                let qs = xpos.scale(pair: pair, headWidth: 16, position: n, length: length, query: true)
                let ks = xpos.scale(pair: pair, headWidth: 16, position: m, length: length, query: false)
                for i in [2 * pair, 2 * pair + 1] { q[i] *= qs; k[i] *= ks }
            }
            return Self.dot(q, k)
        }
        let base = logit(40, 12, length: 128)
        #expect(abs(logit(90, 62, length: 128) - base) < 1e-9 * max(1, abs(base)))
        #expect(abs(logit(40, 12, length: 4096) - base) < 1e-9 * max(1, abs(base)), "centring cancels")
    }

    @Test("Additive biases depend only on the distance; FIRE does not")
    func shiftInvariance() {
        let t5 = T5Bias(), sandwich = Sandwich(dimension: 32), kerple = Kerple(.power), alibi = ALiBi()
        for (i, j) in [(10, 3), (200, 17), (5000, 4000)] {
            for c in [1, 77, 10000] {
                #expect(t5.bucket(relative: j - i) == t5.bucket(relative: (j + c) - (i + c)))
                #expect(
                    sandwich.bias(head: 2, heads: 4, distance: i - j)
                        == sandwich.bias(head: 2, heads: 4, distance: (i + c) - (j + c)))
                #expect(
                    kerple.bias(r1: 0.3, r2: 1.5, distance: i - j)
                        == kerple.bias(r1: 0.3, r2: 1.5, distance: (i + c) - (j + c)))
                #expect(alibi.bias(slope: 0.25, query: i, key: j) == alibi.bias(slope: 0.25, query: i + c, key: j + c))
            }
        }
        let fire = Fire()
        #expect(
            fire.normalizedInput(query: 1000, key: 990, c: 0.1, thresholdMultiplier: 1)
                != fire.normalizedInput(query: 2000, key: 1990, c: 0.1, thresholdMultiplier: 1))
    }

    @Test(
        "Every extension reproduces plain RoPE at factor 1",
        arguments: [
            RotaryScaling.linear(factor: 1), .ntk(factor: 1), .dynamic(factor: 4, originalLength: 2048),
            .yarn(YaRN(factor: 1, originalLength: 512)), .llama3(Llama3Scaling(factor: 1)),
        ])
    func extensionIdentity(scaling: RotaryScaling) {
        let plain = RotaryScaling.none.apply(rotaryWidth: 64, base: 10000, length: 1024)
        let extended = scaling.apply(rotaryWidth: 64, base: 10000, length: 1024)
        expectClose(extended.inverse, plain.inverse, tolerance: 4e-16, relative: true, scaling.name)
        #expect(extended.attentionFactor == 1)
    }

    @Test("Learned absolute positions are unsupported past their table, never clamped")
    func learnedUnsupported() {
        #expect(InputPositionEncoding.learned(rows: 1024).support(at: 1024).isSupported)
        #expect(!InputPositionEncoding.learned(rows: 1024).support(at: 1025).isSupported)
        #expect(!InputPositionEncoding.learned(rows: 2050, offset: 2).support(at: 2049).isSupported)
        #expect(InputPositionEncoding.sinusoidal(.fairseq).support(at: 1 << 20).isSupported)
    }

    struct BucketReference: Decodable {
        var bidirectional: Bool
        var buckets: Int
        var max_distance: Int
        var relative: [Int]
        var bucket: [Int]
    }

    @Test("T5 buckets equal transformers' _relative_position_bucket for distances −300…300")
    func t5Reference() throws {
        for reference in try loadJSON([BucketReference].self, "reference/t5_buckets.json") {
            let t5 = T5Bias(
                buckets: reference.buckets, maxDistance: reference.max_distance,
                bidirectional: reference.bidirectional)
            let mismatches = zip(reference.relative, reference.bucket).filter { t5.bucket(relative: $0) != $1 }
            #expect(
                mismatches.isEmpty,
                "\(reference.buckets)/\(reference.max_distance) bidirectional \(reference.bidirectional): \(mismatches.prefix(5))"
            )
        }
    }

    struct SlopeReference: Decodable {
        var heads: Int
        var bloom: [Double]
        var mpt: [String: [Double]]
    }

    @Test("ALiBi slopes equal BLOOM's and MPT's tensors for 1…32 heads")
    func alibiReference() throws {
        for reference in try loadJSON([SlopeReference].self, "reference/alibi_slopes.json") {
            expectClose(
                ALiBi().slopes(heads: reference.heads), reference.bloom, tolerance: 1e-6, relative: true,
                "BLOOM \(reference.heads) heads")
            for (maxBias, slopes) in reference.mpt {
                expectClose(
                    ALiBi(maxBias: Double(maxBias) ?? 0).slopes(heads: reference.heads), slopes,
                    tolerance: 1e-6, relative: true, "MPT \(reference.heads) heads, max \(maxBias)")
            }
        }
    }
}
