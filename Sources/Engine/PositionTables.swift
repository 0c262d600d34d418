import Architecture
import Foundation
import Kernels

/// cos/sin tables `[length, pairs]` for rotating q and k (rotary, xPos), computed once per length.
package struct RotationTables: @unchecked Sendable {
    package var pairs: Int
    package var interleaved: Bool
    package var queryCos: FloatBuffer, querySin: FloatBuffer
    /// Keys differ from queries only for xPos (inverse scale).
    package var keyCos: FloatBuffer, keySin: FloatBuffer

    /// The transposed (inverse, for rotary; for xPos the scales stay) rotation: the same tables with sin negated.
    /// Training's backward pass rotates the gradients of q and k with it.
    package var transposed: RotationTables {
        func negated(_ table: FloatBuffer) -> FloatBuffer {
            let out = FloatBuffer(uninitialized: table.count)
            for i in 0..<table.count { out.pointer[i] = -table.pointer[i] }
            return out
        }
        return RotationTables(
            pairs: pairs, interleaved: interleaved, queryCos: queryCos, querySin: negated(querySin), keyCos: keyCos,
            keySin: negated(keySin))
    }

    /// Rotary tables, rounded the way `transformers` computes them: inverse frequencies and `position · θ` in
    /// float32, cos/sin of that float angle, times the attention factor in float32.
    package static func rotary(_ rotary: Rotary, headWidth: Int, length: Int) -> RotationTables {
        let frequencies = rotary.frequencies(headWidth: headWidth, length: length)
        let pairs = frequencies.inverse.count
        let inverse = frequencies.inverse.map(Float.init)
        let factor = Float(frequencies.attentionFactor)
        let cos = FloatBuffer(count: length * pairs), sin = FloatBuffer(count: length * pairs)
        fill(length: length) { p in
            for k in 0..<pairs {
                let angle = Float(p) * inverse[k]
                cos.pointer[p * pairs + k] = Float(Foundation.cos(Double(angle))) * factor
                sin.pointer[p * pairs + k] = Float(Foundation.sin(Double(angle))) * factor
            }
        }
        return RotationTables(
            pairs: pairs, interleaved: rotary.layout == .interleaved, queryCos: cos, querySin: sin,
            keyCos: cos, keySin: sin)
    }

    /// xPos: interleaved rotation over the whole head; queries scaled by `ζ^{(p−c)/B}`, keys by its inverse
    /// (`microsoft/torchscale` `XPOS`, float32 like the reference).
    package static func xpos(_ xpos: XPos, headWidth: Int, length: Int) -> RotationTables {
        let base = rotary(xpos.rotary, headWidth: headWidth, length: length)
        let pairs = base.pairs
        let zeta = xpos.pairScales(headWidth: headWidth).map(Float.init)
        let centre = xpos.centre(length: length)
        let qc = FloatBuffer(count: length * pairs), qs = FloatBuffer(count: length * pairs)
        let kc = FloatBuffer(count: length * pairs), ks = FloatBuffer(count: length * pairs)
        fill(length: length) { p in
            let exponent = Float(p - centre) / Float(xpos.scaleBase)
            for k in 0..<pairs {
                let i = p * pairs + k
                let scale = Float(Foundation.pow(Double(zeta[k]), Double(exponent)))
                let inverse = 1 / scale
                qc.pointer[i] = base.queryCos.pointer[i] * scale
                qs.pointer[i] = base.querySin.pointer[i] * scale
                kc.pointer[i] = base.queryCos.pointer[i] * inverse
                ks.pointer[i] = base.querySin.pointer[i] * inverse
            }
        }
        return RotationTables(pairs: pairs, interleaved: true, queryCos: qc, querySin: qs, keyCos: kc, keySin: ks)
    }

    private static func fill(length: Int, _ body: (Int) -> Void) {
        Kernels.parallelRows(length, minimumChunk: 1024) { begin, end in
            for p in begin..<end { body(p) }
        }
    }
}

/// The cos/sin tables of one pass, built once per rotary (or xPos) configuration: the evaluation pass and training's
/// tape share it.
package struct RotationCache {
    let length: Int
    private var tables: [AttentionPosition: RotationTables] = [:]

    package init(length: Int) { self.length = length }

    /// The tables of `position` for heads of `headWidth`, or `nil` for a method that rotates nothing.
    package mutating func tables(for position: BoundPosition, headWidth: Int) -> RotationTables? {
        let key: AttentionPosition
        let make: () -> RotationTables
        switch position {
        case .rotary(let rotary):
            key = .rotary(rotary)
            make = { [length] in .rotary(rotary, headWidth: headWidth, length: length) }
        case .xpos(let xpos):
            key = .xpos(xpos)
            make = { [length] in .xpos(xpos, headWidth: headWidth, length: length) }
        case .none, .alibi, .sandwich, .t5, .kerple, .fire:
            return nil
        }
        if let cached = tables[key] { return cached }
        let made = make()
        tables[key] = made
        return made
    }
}

/// The additive bias tables of one attention layer at one length.
package enum BiasTables {
    package static func make(_ weights: AttentionWeights, length: Int) -> AttentionBiasTables {
        let heads = weights.heads
        func distanceTable(_ value: (_ head: Int, _ distance: Int) -> Double) -> AttentionBiasTables {
            let table = FloatBuffer(count: heads * length)
            for head in 0..<heads {
                for d in 0..<length { table.pointer[head * length + d] = Float(value(head, d)) }
            }
            return .distance(table)
        }
        switch weights.position {
        case .none, .rotary, .xpos:
            return .none
        case .alibi(let alibi):
            let slopes = alibi.slopes(heads: heads)
            return distanceTable { head, d in -slopes[head] * Double(d) }
        case .t5(let t5, let table):
            let buckets = (0..<length).map { t5.bucket(relative: -$0) }
            // Stored [buckets, heads].
            return distanceTable { head, d in Double(table.pointer[buckets[d] * heads + head]) }
        case .kerple(let kerple, let r1, let r2):
            // The reference clamps r1, r2 ≥ 0.01 (and the power kernel's r2 ≤ 2) on every forward pass.
            return distanceTable { head, d in
                let a = max(Double(r1.pointer[head]), 0.01)
                var b = max(Double(r2.pointer[head]), 0.01)
                if kerple.kernel == .power { b = min(b, 2) }
                return kerple.bias(r1: a, r2: b, distance: d)
            }
        case .sandwich(let sandwich):
            let first = (0..<length).map { sandwich.bias(head: 1, heads: heads, distance: $0) }
            return distanceTable { head, d in first[d] / Double(head + 1) }
        case .fire(let fire, let w):
            let cValue = abs(Double(w.c.pointer[0]))
            let threshold = abs(Double(w.multiplier.pointer[0]) * fire.initialThreshold)
            let logDistance = FloatBuffer(count: length), inverse = FloatBuffer(count: length)
            for p in 0..<length {
                logDistance.pointer[p] = Float(log(cValue * Double(p) + 1))
                inverse.pointer[p] = Float(1 / (log(cValue * max(Double(p), threshold) + 1) + fire.epsilon))
            }
            return .fire(
                FireTables(
                    logDistance: logDistance, inverseNormalizer: inverse, w1: w.w1, b1: w.b1, w2: w.w2, b2: w.b2,
                    hidden: fire.hidden))
        }
    }
}
