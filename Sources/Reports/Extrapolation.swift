import Foundation
import Engine
import Evaluation
import ResultStore

/// One checkpoint's extrapolation curve: perplexity against window length for one series (a protocol, or a rotary
/// extension) under one set of scoring settings.
public struct ExtrapolationCurve: Sendable, Hashable, Codable {
    /// One evaluated length.
    public struct Point: Sendable, Hashable, Codable {
        public var length: Int
        /// `length / trainedLength`.
        public var multiple: Double
        public var perplexity: Double
        public var meanNLL: Double
        public var tokens: Int
        /// The 95% bootstrap interval of the perplexity, when it was computed.
        public var lower: Double?
        public var upper: Double?
        /// Windows (or documents) the interval was resampled over, and whether that is fewer than
        /// `Bootstrap.reliableUnits`: such an interval is drawn hatched, not as a confident band.
        public var windows: Int?
        public var fewWindows: Bool

        public init(
            length: Int, multiple: Double, perplexity: Double, meanNLL: Double, tokens: Int, lower: Double?,
            upper: Double?, windows: Int? = nil, fewWindows: Bool = false
        ) {
            self.length = length
            self.multiple = multiple
            self.perplexity = perplexity
            self.meanNLL = meanNLL
            self.tokens = tokens
            self.lower = lower
            self.upper = upper
            self.windows = windows
            self.fewWindows = fewWindows
        }
    }

    /// A length the checkpoint cannot be evaluated at (learned positions past their table), and why.
    public struct Unsupported: Sendable, Hashable, Codable {
        public var length: Int
        public var multiple: Double
        public var reason: String
    }

    public var run: String
    /// The store's identifier of the checkpoint version, its path and step.
    public var checkpointID: Int64
    public var checkpoint: String
    public var step: Int?
    public var checkpointState: CheckpointState
    public var series: String
    public var evaluationProtocol: String
    public var trainedLength: Int
    /// What the numbers were computed over (data, protocol, span): curves are comparable only when it is equal.
    public var scoringHash: String
    /// Evaluated lengths, shortest first.
    public var points: [Point]
    /// Lengths asked for that the checkpoint cannot represent, shortest first.
    public var unsupported: [Unsupported] = []
    /// Where the trained length came from, and the data scored (when the results recorded them).
    public var trainedLengthSource: String?
    public var data: DataReference?
    /// The arithmetic of the products (`float32`, or `bf16` under `--precision bf16`); `nil` decodes as float32.
    public var precision: Precision?

    enum CodingKeys: String, CodingKey {
        case run, checkpointID, checkpoint, step, checkpointState, series, evaluationProtocol = "protocol"
        case trainedLength, trainedLengthSource, data, scoringHash, points, unsupported, precision
    }

    /// Encodes every field and `provenance`, so the page shows the same line as the report's table.
    public func encode(to encoder: any Encoder) throws {
        try Fields(curve: self).encode(to: encoder)
        var container = encoder.container(keyedBy: ProvenanceKey.self)
        try container.encode(provenance, forKey: .provenance)
    }

    private enum ProvenanceKey: String, CodingKey { case provenance }

    /// The stored fields, encoded as the synthesized conformance would.
    private struct Fields: Encodable {
        var curve: ExtrapolationCurve
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(curve.run, forKey: .run)
            try c.encode(curve.checkpointID, forKey: .checkpointID)
            try c.encode(curve.checkpoint, forKey: .checkpoint)
            try c.encodeIfPresent(curve.step, forKey: .step)
            try c.encode(curve.checkpointState, forKey: .checkpointState)
            try c.encode(curve.series, forKey: .series)
            try c.encode(curve.evaluationProtocol, forKey: .evaluationProtocol)
            try c.encode(curve.trainedLength, forKey: .trainedLength)
            try c.encodeIfPresent(curve.trainedLengthSource, forKey: .trainedLengthSource)
            try c.encodeIfPresent(curve.data, forKey: .data)
            try c.encode(curve.precision ?? .float32, forKey: .precision)
            try c.encode(curve.scoringHash, forKey: .scoringHash)
            try c.encode(curve.points, forKey: .points)
            try c.encode(curve.unsupported, forKey: .unsupported)
        }
    }

    /// What the numbers are, in one line: data (name and checksum), protocol, targets per length, and windows at the
    /// longest length (`valid.tokens.zst (xxh64:1a2b3c4d…), nonoverlapping, 4,096 targets per length, 4 windows at
    /// 1024`).
    public var provenance: String {
        var parts: [String] = []
        if let data {
            let name = (data.path as NSString).lastPathComponent
            parts.append(data.checksum.map { "\(name) (\($0.prefix(14))…)" } ?? name)
        }
        parts.append(evaluationProtocol)
        if let tokens = points.first?.tokens { parts.append("\(tokens.formatted()) targets per length") }
        if let last = points.last, let windows = last.windows {
            parts.append(
                "\(windows) windows at \(last.length)" + (last.fewWindows ? " (too few for a firm interval)" : ""))
        }
        return parts.joined(separator: ", ")
    }

    /// The perplexity at `multiple` × the trained length, when that length was evaluated.
    public func perplexity(atMultiple multiple: Double) -> Double? {
        points.first { abs($0.multiple - multiple) < 1e-9 }?.perplexity
    }

    /// ppl(kL) / ppl(L) for every evaluated multiple k (1 for L itself), when L was evaluated.
    public var ratios: [Double: Double] {
        guard let base = perplexity(atMultiple: 1), base > 0 else { return [:] }
        return Dictionary(points.map { ($0.multiple, $0.perplexity / base) }, uniquingKeysWith: { a, _ in a })
    }

    /// "run · series" (the series only when it is not the plain protocol), with "· bf16" when computed so.
    public var label: String {
        let label = series == evaluationProtocol ? run : "\(run) · \(series)"
        return (precision ?? .float32) == .float32 ? label : "\(label) · \(precision!.rawValue)"
    }

    /// "step N", or the checkpoint's file name when it has no step.
    public var stepLabel: String {
        step.map { "step \($0)" } ?? URL(fileURLWithPath: checkpoint).lastPathComponent
    }
}

/// Curves, the newest checkpoint of each run, and regression alerts, from stored results: what the web page, the
/// nightly report and `/api/alerts` show.
public enum Extrapolation {
    /// Every evaluated (checkpoint version, series, scoring) as a curve, ordered by run, series, then step.
    public static func curves(_ rows: [StoredResultsReport.Row]) -> [ExtrapolationCurve] {
        var grouped: [String: ExtrapolationCurve] = [:]
        for row in rows where row.passkey == nil && (row.outcome == .evaluated || row.outcome == .unsupported) {
            let key = "\(row.checkpointID)|\(row.series)|\(row.scoringHash)"
            var curve =
                grouped[key]
                ?? ExtrapolationCurve(
                    run: row.run, checkpointID: row.checkpointID, checkpoint: row.checkpoint, step: row.step,
                    checkpointState: row.checkpointState, series: row.series,
                    evaluationProtocol: row.evaluationProtocol, trainedLength: row.trainedLength,
                    scoringHash: row.scoringHash, points: [])
            curve.trainedLengthSource = curve.trainedLengthSource ?? row.trainedLengthSource
            curve.data = curve.data ?? row.data
            curve.precision = row.precision
            if row.outcome == .unsupported {
                curve.unsupported.append(
                    .init(length: row.length, multiple: row.multiple, reason: row.reason ?? "not supported"))
            } else if let perplexity = row.perplexity, let meanNLL = row.meanNLL {
                curve.points.append(
                    .init(
                        length: row.length, multiple: row.multiple, perplexity: perplexity, meanNLL: meanNLL,
                        tokens: row.tokens ?? 0, lower: row.interval?.lower, upper: row.interval?.upper,
                        windows: row.windows, fewWindows: row.fewWindows))
            }
            grouped[key] = curve
        }
        return grouped.values.filter { !$0.points.isEmpty }.map { curve in
            var curve = curve
            curve.points.sort { $0.length < $1.length }
            curve.unsupported.sort { $0.length < $1.length }
            return curve
        }
        .sorted(by: order)
    }

    /// Run, series, then step (a checkpoint without a step first), then version.
    static func order(_ a: ExtrapolationCurve, _ b: ExtrapolationCurve) -> Bool {
        if a.run != b.run { return a.run < b.run }
        if a.series != b.series { return a.series < b.series }
        if a.step != b.step { return (a.step ?? -1) < (b.step ?? -1) }
        return a.checkpointID < b.checkpointID
    }

    /// For each run and series, the curve of its newest checkpoint (highest step) still on disk; a run whose
    /// checkpoints were all replaced or deleted keeps its newest stored curve.
    public static func newest(_ curves: [ExtrapolationCurve]) -> [ExtrapolationCurve] {
        var newest: [String: ExtrapolationCurve] = [:]
        for curve in curves {
            let key = "\(curve.run)|\(curve.series)"
            guard let held = newest[key] else {
                newest[key] = curve
                continue
            }
            let live = curve.checkpointState == .current, heldLive = held.checkpointState == .current
            if live != heldLive {
                if live { newest[key] = curve }
            } else if !order(curve, held) {
                newest[key] = curve
            }
        }
        return newest.values.sorted(by: order)
    }

    /// The multiples evaluated in any of `curves`, smallest first.
    public static func multiples(_ curves: [ExtrapolationCurve]) -> [Double] {
        Array(Set(curves.flatMap { $0.points.map(\.multiple) })).sorted()
    }

    /// The alerts standing now (see `AlertThresholds`): for each run and series, a regression between its two newest
    /// checkpoints, and a ratio above the threshold at its newest checkpoint.
    public static func alerts(_ curves: [ExtrapolationCurve], thresholds: AlertThresholds) -> [Alert] {
        var alerts: [Alert] = []
        let live = curves.filter { $0.checkpointState == .current && $0.step != nil }
        let byRun = Dictionary(grouping: live) { "\($0.run)|\($0.series)|\($0.scoringHash)" }
        for key in byRun.keys.sorted() {
            let history = byRun[key]!.sorted(by: order)
            // Worse at kL while better at L, between the two newest checkpoints (older pairs are history: the
            // nightly report's changes show them).
            for (previous, current) in zip(history.dropLast().suffix(1), history.suffix(1)) {
                guard let base = current.perplexity(atMultiple: 1),
                    let previousBase = previous.perplexity(atMultiple: 1),
                    base < previousBase
                else { continue }
                for point in current.points where point.multiple > 1 {
                    guard let before = previous.perplexity(atMultiple: point.multiple), before > 0 else { continue }
                    let change = point.perplexity / before - 1
                    guard change > thresholds.regression else { continue }
                    alerts.append(
                        Alert(
                            kind: .regression, run: current.run, series: current.series, step: current.step,
                            previousStep: previous.step, checkpointID: current.checkpointID, multiple: point.multiple,
                            value: change, threshold: thresholds.regression,
                            message: String(
                                format:
                                    "%@ %@: perplexity at %@L rose %.1f%% (%.4g → %.4g) since %@ while at L it fell "
                                    + "(%.4g → %.4g)", current.label, current.stepLabel,
                                Alert.format(point.multiple), change * 100, before, point.perplexity,
                                previous.stepLabel, previousBase, base)))
                }
            }
            // ppl(kL)/ppl(L) above the threshold at the newest checkpoint, and where it first crossed.
            guard let newest = history.last, let ratio = Self.ratio(newest, at: thresholds.ratioMultiple),
                ratio.value > thresholds.ratio
            else { continue }
            var crossed = newest
            for curve in history.reversed() {
                guard let r = Self.ratio(curve, at: thresholds.ratioMultiple), r.value > thresholds.ratio else { break }
                crossed = curve
            }
            alerts.append(
                Alert(
                    kind: .ratio, run: newest.run, series: newest.series, step: newest.step,
                    previousStep: crossed.step == newest.step ? nil : crossed.step, checkpointID: newest.checkpointID,
                    multiple: ratio.multiple, value: ratio.value, threshold: thresholds.ratio,
                    message: String(
                        format: "%@ %@: ppl(%@L)/ppl(L) = %.3g exceeds %.3g%@", newest.label, newest.stepLabel,
                        Alert.format(ratio.multiple), ratio.value, thresholds.ratio,
                        crossed.step == newest.step ? "" : " (since \(crossed.stepLabel))")))
        }
        return alerts
    }

    /// The newest curves whose ratio at `thresholds.ratioMultiple` could not be measured because that length is
    /// unsupported (learned positions past their table): "no ratio exceeds" says nothing of them.
    public static func unmeasured(_ newest: [ExtrapolationCurve], thresholds: AlertThresholds)
        -> [(curve: ExtrapolationCurve, reason: String)]
    {
        newest.compactMap { curve in
            curve.unsupported.first { abs($0.multiple - thresholds.ratioMultiple) < 1e-9 }.map { (curve, $0.reason) }
        }
    }

    /// The ratio at `multiple`, else at the largest evaluated multiple above 1 below it.
    static func ratio(_ curve: ExtrapolationCurve, at multiple: Double) -> (multiple: Double, value: Double)? {
        let ratios = curve.ratios
        guard let k = ratios.keys.filter({ $0 > 1 && $0 <= multiple + 1e-9 }).max(), let value = ratios[k] else {
            return nil
        }
        return (k, value)
    }
}

/// When an alert is raised (`[alerts]` in the configuration).
public struct AlertThresholds: Sendable, Hashable, Codable {
    /// Relative rise of perplexity at some kL > L between consecutive checkpoints, while perplexity at L fell
    /// (default 0.10: 10%).
    public var regression: Double
    /// ppl(kL)/ppl(L) at the newest checkpoint above this (default 4) …
    public var ratio: Double
    /// … at this k (default 16; the largest evaluated multiple below it when k was not evaluated).
    public var ratioMultiple: Double
    /// Drop of passkey accuracy at a length (mean over depths, absolute) between a run's two newest checkpoints with
    /// passkey results (default 0.2: 20 points).
    public var passkeyDrop: Double

    public init(regression: Double = 0.10, ratio: Double = 4, ratioMultiple: Double = 16, passkeyDrop: Double = 0.2) {
        self.regression = regression
        self.ratio = ratio
        self.ratioMultiple = ratioMultiple
        self.passkeyDrop = passkeyDrop
    }

    enum CodingKeys: String, CodingKey { case regression, ratio, ratioMultiple, passkeyDrop }

    /// Thresholds written before `passkeyDrop` existed read with its default.
    public init(from decoder: any Decoder) throws {
        let values = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            regression: try values.decode(Double.self, forKey: .regression),
            ratio: try values.decode(Double.self, forKey: .ratio),
            ratioMultiple: try values.decode(Double.self, forKey: .ratioMultiple),
            passkeyDrop: try values.decodeIfPresent(Double.self, forKey: .passkeyDrop) ?? 0.2)
    }
}

/// Something a researcher should look at.
public struct Alert: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable {
        /// Perplexity at kL got worse by more than the threshold while perplexity at L improved.
        case regression
        /// ppl(kL)/ppl(L) above the threshold.
        case ratio
        /// Passkey accuracy at kL fell by more than the threshold between a run's two newest checkpoints.
        case passkey
    }

    public var kind: Kind
    public var run: String
    public var series: String
    /// The checkpoint the alert is about, and the one it is compared with (for `ratio`: where it first crossed).
    public var step: Int?
    public var previousStep: Int?
    public var checkpointID: Int64
    /// k in kL.
    public var multiple: Double
    /// The relative rise (`regression`) or the ratio (`ratio`), and the threshold it passed.
    public var value: Double
    public var threshold: Double
    public var message: String

    static func format(_ multiple: Double) -> String {
        multiple == multiple.rounded() ? String(Int(multiple)) : String(format: "%.3g", multiple)
    }
}

/// The paired bootstrap of two checkpoints' stored results: the same data, settings, series and length, so the
/// same windows (what `extrapolate compare` computes, from the store instead of a new evaluation).
public enum PairedResults {
    /// One compared (series, length).
    public struct Entry: Sendable, Hashable, Codable {
        public var series: String
        public var length: Int
        public var multiple: Double
        public var perplexityA: Double
        public var perplexityB: Double
        /// Mean NLL of B minus A (negative: B is better), B / A perplexity, and the paired 95% interval.
        public var meanNLLDifference: Double
        public var perplexityRatio: Double
        public var interval: Interval
        public var fractionBBetter: Double
        public var warnings: [String]
    }

    /// Every (series, length) both sides have on the same scoring, optionally only `length` and `series`.
    public static func compare(
        _ a: [StoredResultsReport.Row], _ b: [StoredResultsReport.Row], length: Int? = nil, series: String? = nil,
        resamples: Int = 1000, seed: UInt64 = 0
    ) throws -> [Entry] {
        let sideB = Dictionary(
            b.compactMap { row in row.result.map { ("\(row.series)|\(row.length)|\(row.scoringHash)", $0) } },
            uniquingKeysWith: { first, _ in first })
        var entries: [Entry] = []
        for row in a.sorted(by: { ($0.series, $0.length) < ($1.series, $1.length) }) {
            guard length == nil || row.length == length, series == nil || row.series == series,
                let ra = row.result, let rb = sideB["\(row.series)|\(row.length)|\(row.scoringHash)"]
            else { continue }
            let paired = try Bootstrap.compare(ra, rb, resamples: resamples, seed: seed)
            let (units, unit) = Bootstrap.unitCount(ra)
            entries.append(
                Entry(
                    series: row.series, length: row.length, multiple: row.multiple, perplexityA: ra.perplexity,
                    perplexityB: rb.perplexity, meanNLLDifference: paired.meanDifference,
                    perplexityRatio: paired.perplexityRatio, interval: paired.interval,
                    fractionBBetter: paired.fractionBBetter,
                    warnings: Bootstrap.note(units: units, unit: unit, resamples: resamples).map { [$0] } ?? []))
        }
        return entries
    }
}
