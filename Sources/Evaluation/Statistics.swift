import Foundation

/// A seeded generator so that every interval is reproducible from its seed.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    /// The whole state: a generator made with `init(seed: state)` continues the sequence exactly (training's
    /// `--resume` keeps its data order so).
    public private(set) var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A percentile bootstrap interval.
public struct Interval: Sendable, Hashable, Codable {
    public var lower: Double
    public var upper: Double
    /// Coverage (0.95).
    public var level: Double
    public var resamples: Int
    public var seed: UInt64
    /// What was resampled (`windows` or `documents`).
    public var unit: String
    /// How many of them there were.
    public var units: Int
    /// What the interval bounds: `perplexity`, or `meanNLLDifference` (nats, B − A) for a comparison.
    public var quantity: String
}

/// A paired comparison of two evaluations of the same windows.
public struct PairedComparison: Sendable, Hashable, Codable {
    /// Mean NLL of B minus mean NLL of A (negative: B is better).
    public var meanDifference: Double
    /// Perplexity ratio B / A.
    public var perplexityRatio: Double
    /// Bootstrap interval of the mean-NLL difference.
    public var interval: Interval
    /// Fraction of resamples in which B's mean NLL was lower than A's.
    public var fractionBBetter: Double
}

public enum Bootstrap {
    /// Fewer resampling units than this give a percentile interval too narrow to trust: it is still computed, with
    /// a warning (`note(units:unit:resamples:)`).
    public static let reliableUnits = 20

    /// Why an interval over `units` resampling units is missing or unreliable, or `nil` when it is fine.
    public static func note(units: Int, unit: String, resamples: Int) -> String? {
        if resamples < 10 {
            return "no interval: bootstrap off (--bootstrap \(resamples); at least 10 resamples draw one)"
        }
        if units < 2 { return "no interval: only \(units) \(unit.dropLast()) to resample" }
        if units < reliableUnits {
            return "interval from only \(units) \(unit): too few to trust (want ≥ \(reliableUnits)); raise --budget"
        }
        return nil
    }

    /// How many resampling units a result has, and what they are (`windows` or `documents`).
    public static func unitCount(_ result: EvaluationResult) -> (count: Int, name: String) {
        let (units, name) = units(result)
        return (units.count, name)
    }

    static func units(_ result: EvaluationResult) -> (units: [(nll: Double, tokens: Int)], name: String) {
        guard result.perDocument else { return (result.windows.map { ($0.nll, $0.tokens) }, "windows") }
        var grouped: [Int: (Double, Int)] = [:]
        for window in result.windows {
            let current = grouped[window.document] ?? (0, 0)
            grouped[window.document] = (current.0 + window.nll, current.1 + window.tokens)
        }
        return (grouped.keys.sorted().map { grouped[$0]! }, "documents")
    }

    /// 95% (by default) percentile interval of the token-weighted perplexity, resampling windows or documents.
    public static func perplexityInterval(
        _ result: EvaluationResult, resamples: Int = 1000, seed: UInt64 = 0,
        level: Double = 0.95
    ) -> Interval? {
        let (units, name) = units(result)
        guard units.count >= 2, resamples >= 10 else { return nil }
        var generator = SeededGenerator(seed: seed)
        var values: [Double] = []
        values.reserveCapacity(resamples)
        for _ in 0..<resamples {
            var nll = 0.0, tokens = 0
            for _ in 0..<units.count {
                let unit = units[Int(generator.next() % UInt64(units.count))]
                nll += unit.nll
                tokens += unit.tokens
            }
            values.append(exp(nll / Double(max(tokens, 1))))
        }
        let (lower, upper) = percentiles(values, level)
        return Interval(
            lower: lower, upper: upper, level: level, resamples: resamples, seed: seed, unit: name,
            units: units.count, quantity: "perplexity")
    }

    /// Paired bootstrap of B against A over the same windows (same protocol, length and tokens).
    public static func compare(
        _ a: EvaluationResult, _ b: EvaluationResult, resamples: Int = 1000, seed: UInt64 = 0,
        level: Double = 0.95
    ) throws -> PairedComparison {
        let (ua, name) = units(a)
        let (ub, _) = units(b)
        guard ua.count == ub.count, zip(ua, ub).allSatisfy({ $0.tokens == $1.tokens }) else {
            throw EvaluationError.invalidOptions(
                "the two evaluations did not score the same windows; use the same data, length and protocol")
        }
        var generator = SeededGenerator(seed: seed)
        var differences: [Double] = []
        var better = 0
        for _ in 0..<resamples {
            var sa = 0.0, sb = 0.0, tokens = 0
            for _ in 0..<ua.count {
                let index = Int(generator.next() % UInt64(ua.count))
                sa += ua[index].nll
                sb += ub[index].nll
                tokens += ua[index].tokens
            }
            let difference = (sb - sa) / Double(max(tokens, 1))
            differences.append(difference)
            if difference < 0 { better += 1 }
        }
        let (lower, upper) = percentiles(differences, level)
        return PairedComparison(
            meanDifference: b.meanNLL - a.meanNLL, perplexityRatio: b.perplexity / a.perplexity,
            interval: Interval(
                lower: lower, upper: upper, level: level, resamples: resamples, seed: seed, unit: name,
                units: ua.count, quantity: "meanNLLDifference"),
            fractionBBetter: Double(better) / Double(max(resamples, 1)))
    }

    static func percentiles(_ values: [Double], _ level: Double) -> (Double, Double) {
        let sorted = values.sorted()
        func at(_ q: Double) -> Double {
            let position = q * Double(sorted.count - 1)
            let low = Int(position.rounded(.down)), high = min(low + 1, sorted.count - 1)
            return sorted[low] + (sorted[high] - sorted[low]) * (position - Double(low))
        }
        return (at((1 - level) / 2), at(1 - (1 - level) / 2))
    }
}
