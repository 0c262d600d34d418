import Foundation
import Testing
import TestSupport

@testable import Architecture

/// Worked numbers of `Docs/spec/position-encodings.md`, one test per section.
@Suite("Position encodings match the spec's worked numbers")
struct PositionSpecTests {
    @Test("8-, 12- and 16-head ALiBi slopes match the reference order (§7)")
    func alibiSlopes() {
        expectClose(ALiBi().slopes(heads: 8), (1...8).map { exp2(-Double($0)) }, tolerance: 1e-15, "8 heads")
        expectClose(
            ALiBi().slopes(heads: 12),
            (1...8).map { exp2(-Double($0)) } + [0.707107, 0.353553, 0.176777, 0.0883883],
            tolerance: 1e-6, "12 heads")
        expectClose(ALiBi().slopes(heads: 16), (1...16).map { exp2(-Double($0) / 2) }, tolerance: 1e-15, "16 heads")
    }

    @Test("MPT's slope rule with alibi_bias_max 8 equals the paper's for 1…128 heads (§7)")
    func mptEqualsPaper() {
        for heads in 1...128 {
            expectClose(
                ALiBi(maxBias: 8).slopes(heads: heads), ALiBi().slopes(heads: heads), tolerance: 1e-15,
                "\(heads) heads")
        }
    }

    @Test("Causal T5 buckets, 32 buckets / max distance 128, match the spec table (§6)")
    func t5Causal() {
        let t5 = T5Bias()
        let table: [(ClosedRange<Int>, Int)] = [
            (16...18, 16), (19...20, 17), (21...23, 18), (24...26, 19), (27...30, 20), (31...34, 21), (35...39, 22),
            (40...45, 23), (46...51, 24), (52...58, 25), (59...66, 26), (67...76, 27), (77...86, 28), (87...98, 29),
            (99...112, 30), (113...200, 31),
        ]
        for d in 0...15 { #expect(t5.bucket(relative: -d) == d) }
        for (range, bucket) in table {
            for d in range { #expect(t5.bucket(relative: -d) == bucket, "distance \(d)") }
        }
        #expect(t5.bucket(relative: 5) == 0, "future keys collapse to bucket 0 in the causal form")
    }

    @Test("Bidirectional T5 buckets, 32 / 128, match the spec table (§6)")
    func t5Bidirectional() {
        let t5 = T5Bias(bidirectional: true)
        let past: [(ClosedRange<Int>, Int)] = [
            (8...11, 8), (12...15, 9), (16...22, 10), (23...31, 11), (32...45, 12), (46...63, 13), (64...90, 14),
            (91...300, 15),
        ]
        for d in 0...7 { #expect(t5.bucket(relative: -d) == d) }
        for d in 1...7 { #expect(t5.bucket(relative: d) == 16 + d) }
        for (range, bucket) in past {
            for d in range {
                #expect(t5.bucket(relative: -d) == bucket, "past distance \(d)")
                #expect(t5.bucket(relative: d) == bucket + 16, "future distance \(d)")
            }
        }
    }

    @Test("Sinusoidal test vectors for D = 8, p = 3 in both layouts (§3)")
    func sinusoidal() {
        expectClose(
            SinusoidalLayout.vaswani.embedding(position: 3, width: 8),
            [0.1411, -0.9900, 0.2955, 0.9553, 0.0300, 0.9996, 0.0030, 1.0000], tolerance: 5e-5, "vaswani")
        expectClose(
            SinusoidalLayout.fairseq.embedding(position: 3, width: 8),
            [0.1411, 0.1388, 0.0065, 0.0003, -0.9900, 0.9903, 1.0000, 1.0000], tolerance: 5e-5, "fairseq")
        #expect(SinusoidalLayout.fairseq.embedding(position: 3, width: 9).last == 0, "odd width gets a zero column")
    }

    @Test("Rotary frequencies for d_rot = 128, base 1e4 (§4)")
    func rotaryTheta() {
        let theta = Rotary.defaultFrequencies(rotaryWidth: 128, base: 10000)
        #expect(theta[0] == 1)
        #expect(abs(theta[1] - 0.865964) < 1e-6)
        #expect(abs(theta[63] - 1.15478e-4) / 1.15478e-4 < 1e-5)
        #expect(abs(2 * .pi / theta[63] - 54410) < 1)
    }

    @Test("Static NTK bases for d_rot = 128 at s = 2, 4, 8 and the dynamic NTK base (§5)")
    func ntkBases() {
        for (s, expected) in [(2.0, 20221.3), (4.0, 40889.9), (8.0, 82684.6)] {
            let theta0 = RotaryScaling.ntk(factor: s).apply(rotaryWidth: 128, base: 10000, length: 1).inverse[1]
            let base = pow(1 / theta0, 128.0 / 2)
            #expect(abs(base - expected) < 0.1, "s = \(s): base \(base)")
        }
        let dynamic = RotaryScaling.dynamic(factor: 2, originalLength: 4096).apply(
            rotaryWidth: 128, base: 10000, length: 8192)
        #expect(abs(pow(1 / dynamic.inverse[1], 64) - 30527.7) < 0.1)
    }

    @Test(
        "YaRN correction ranges and attention factors (§5)",
        arguments: [
            (128, 4096, 20.0, 46.0), (128, 2048, 16.0, 41.0), (128, 512, 6.0, 31.0),
            (64, 256, 0.0, 13.0), (64, 512, 3.0, 16.0), (64, 1024, 5.0, 18.0), (32, 512, 1.0, 8.0),
        ])
    func yarnRanges(rotaryWidth: Int, original: Int, low: Double, high: Double) {
        let range = YaRN(factor: 4, originalLength: original).correctionRange(rotaryWidth: rotaryWidth, base: 10000)
        #expect(range.low == low && range.high == high, "got \(range)")
    }

    @Test("YaRN attention factor 0.1·ln s + 1 for s = 4, 8, 16 (§5)")
    func yarnFactors() {
        for (s, expected) in [(4.0, 1.138629), (8.0, 1.207944), (16.0, 1.277259)] {
            #expect(abs(YaRN(factor: s, originalLength: 4096).resolvedAttentionFactor - expected) < 1e-6)
        }
    }

    @Test("llama3 split for d_rot 128, base 5e5, s 8: 29 kept, 29 divided, 6 smoothed (§5)")
    func llama3Split() {
        let theta = Rotary.defaultFrequencies(rotaryWidth: 128, base: 500000)
        let rule = Llama3Scaling()
        let scaled = theta.map(rule.apply)
        let kept = zip(theta, scaled).filter { $0 == $1 }.count
        let divided = zip(theta, scaled).filter { abs($1 - $0 / 8) <= 1e-18 }.count
        #expect(kept == 29 && divided == 29 && theta.count - kept - divided == 6)
    }

    @Test("KERPLE log kernel values (§8)")
    func kerple() {
        #expect(abs(Kerple(.logarithmic).bias(r1: 1, r2: 1, distance: 10) + 2.3979) < 1e-4)
        #expect(abs(Kerple(.logarithmic).bias(r1: 2, r2: 0.5, distance: 10) + 3.5835) < 1e-4)
        #expect(Kerple(.power).bias(r1: 0.5, r2: 1, distance: 6) == -3, "power with r2 = 1 is ALiBi")
    }

    @Test("FIRE normalised inputs with c = 0.1, L = 512 (§9)")
    func fire() {
        let fire = Fire()
        for ((i, j), expected) in [
            ((10, 0), 0.1753), ((100, 0), 0.6063), ((512, 0), 1.0), ((2048, 0), 1.0),
            ((2048, 2000), 0.3300),
        ] {
            let x = fire.normalizedInput(query: i, key: j, c: 0.1, thresholdMultiplier: 1)
            #expect(abs(x - expected) < 1e-4, "(\(i), \(j)) → \(x)")
        }
    }

    @Test("Sandwich biases for d' = 64, 8 heads (§11)")
    func sandwich() {
        let sandwich = Sandwich(dimension: 64)
        let head1 = [0, -0.6235, -2.28, -4.423, -6.412, -7.7797]
        for (d, expected) in head1.enumerated() {
            #expect(abs(sandwich.bias(head: 1, heads: 8, distance: d) - expected) < 1e-3, "distance \(d)")
        }
        #expect(abs(sandwich.bias(head: 1, heads: 8, distance: 100) + 13.988) < 1e-3)
        #expect(abs(sandwich.bias(head: 1, heads: 8, distance: 1000) + 22.641) < 1e-3)
        #expect(
            abs(sandwich.bias(head: 8, heads: 8, distance: 3) * 8 - sandwich.bias(head: 1, heads: 8, distance: 3))
                < 1e-12)
    }

    @Test("xPos pair scales for head width 8 (§10)")
    func xposScales() {
        expectClose(XPos().pairScales(headWidth: 8), [0.2857, 0.4643, 0.6429, 0.8214], tolerance: 5e-5, "ζ")
    }
}
