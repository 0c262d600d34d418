import Evaluation
import Foundation

/// The extrapolation charts of the web page and the nightly report, drawn by `Plot`: perplexity against multiples
/// of the trained length (log x, L marked, log y), perplexity at each multiple against training step, and loss by
/// position in the window.
public enum ExtrapolationCharts {
    /// One curve per run (its newest checkpoint).
    /// Each run keeps its colour (chosen by its name) whichever runs are drawn beside it.
    public static func overview(_ newest: [ExtrapolationCurve]) -> String {
        Plot.svg(
            title: "Newest checkpoint of each run", xLabel: "evaluation length (× trained length L)",
            yLabel: "perplexity",
            series: newest.map {
                curveSeries($0, name: "\($0.label) (\($0.stepLabel))", color: Plot.color(for: $0.label))
            },
            logY: true, markers: [(x: 1, label: "L")], note: note(newest), xValue: { "\(Plot.format($0))L" })
    }

    /// What hatched bands and crosses mean, when the chart has any.
    static func note(_ curves: [ExtrapolationCurve]) -> String? {
        var parts: [String] = []
        if curves.contains(where: { $0.points.contains(where: \.fewWindows) }) {
            parts.append(
                "hatched band, hollow point: interval from fewer than \(Bootstrap.reliableUnits) windows (raise --budget)"
            )
        }
        if curves.contains(where: { !$0.unsupported.isEmpty }) {
            parts.append("×: a length the model cannot represent (hover for why)")
        }
        return parts.isEmpty ? nil : parts.joined(separator: "; ")
    }

    /// Every checkpoint of one run, coloured from light (early) to dark (late) by step.
    public static func checkpoints(_ curves: [ExtrapolationCurve], run: String) -> String {
        let ordered = curves.sorted { ($0.step ?? -1) < ($1.step ?? -1) }
        let series = ordered.enumerated().map { index, curve in
            curveSeries(
                curve,
                name: curve.series == curve.evaluationProtocol
                    ? curve.stepLabel : "\(curve.stepLabel) · \(curve.series)",
                color: ramp(ordered.count < 2 ? 1 : Double(index) / Double(ordered.count - 1)))
        }
        let trained = Set(curves.map(\.trainedLength)).sorted().map(String.init).joined(separator: ", ")
        return Plot.svg(
            title: "\(run): every checkpoint", xLabel: "evaluation length (× trained length L)", yLabel: "perplexity",
            series: series, logY: true, markers: [(x: 1, label: "L = \(trained)")], note: note(curves),
            xValue: { "\(Plot.format($0))L" })
    }

    /// The two checkpoints of a comparison, A and B, each series a line (A solid blue, B red).
    public static func comparison(_ curves: [ExtrapolationCurve], a: Int64, b: Int64) -> String {
        let series = curves.sorted {
            ($0.checkpointID == a ? 0 : 1, $0.series) < ($1.checkpointID == a ? 0 : 1, $1.series)
        }
        .map { curve in
            let side = curve.checkpointID == a ? "A" : "B"
            return curveSeries(
                curve, name: "\(side): \(curve.label) \(curve.stepLabel)",
                color: curve.checkpointID == a ? "#1f77b4" : "#d62728")
        }
        return Plot.svg(
            title: "A and B", xLabel: "evaluation length (× trained length L)", yLabel: "perplexity", series: series,
            logY: true, markers: [(x: 1, label: "L")], note: note(curves), xValue: { "\(Plot.format($0))L" })
    }

    /// Perplexity at each multiple against training step: does extrapolation improve as training goes on?
    public static func bySteps(_ curves: [ExtrapolationCurve], run: String) -> String {
        let stepped = curves.filter { $0.step != nil }
        var series: [Plot.Series] = []
        for name in Array(Set(stepped.map(\.series))).sorted() {
            let mine = stepped.filter { $0.series == name }
            for multiple in Extrapolation.multiples(mine) {
                let points = mine.compactMap { curve in
                    curve.perplexity(atMultiple: multiple).map { (x: Double(curve.step!), y: $0) }
                }
                let prefix = mine.first.map { $0.series == $0.evaluationProtocol } == true ? "" : "\(name) "
                series.append(Plot.Series(name: "\(prefix)\(Plot.format(multiple))L", points: points))
            }
        }
        return Plot.svg(
            title: "\(run): perplexity at each length by training step", xLabel: "training step",
            yLabel: "perplexity", series: series, logY: true, logX: false, xValue: { "step \(Plot.format($0))" })
    }

    /// Mean loss by position in the window, one line per evaluated length; each bucket is drawn at its first position
    /// (counted from 1), so the buckets (powers of two) are evenly spaced on the log axis.
    /// - Parameter trainedLength: marked as a labelled line: positions past it were never seen in training.
    public static func positions(
        _ lengths: [(label: String, buckets: [PositionBucket])], title: String, trainedLength: Int? = nil
    ) -> String {
        let series = lengths.map { entry in
            Plot.Series(
                name: entry.label,
                points: entry.buckets.map { (x: Double($0.lower + 1), y: $0.meanNLL) },
                hollow: Set(entry.buckets.enumerated().filter { $0.element.firstWindowsOnly }.map(\.offset)))
        }
        return Plot.svg(
            title: title, xLabel: "position in the window (first of each bucket, from 1)", yLabel: "mean NLL (nats)",
            series: series, markers: trainedLength.map { [(x: Double($0), label: "L = \($0)")] } ?? [],
            xValue: { "position \(Plot.format($0))" })
    }

    static func curveSeries(_ curve: ExtrapolationCurve, name: String, color: String? = nil) -> Plot.Series {
        Plot.Series(
            name: name, points: curve.points.map { (x: $0.multiple, y: $0.perplexity) },
            band: curve.points.compactMap { point in
                guard let lower = point.lower, let upper = point.upper else { return nil }
                return (x: point.multiple, lower: lower, upper: upper)
            }, hollow: Set(curve.points.indices.filter { curve.points[$0].fewWindows }), color: color,
            hatched: curve.points.contains(where: \.fewWindows),
            missing: curve.unsupported.map { (x: $0.multiple, reason: $0.reason) })
    }

    /// A light-to-dark blue for `t` in 0…1.
    static func ramp(_ t: Double) -> String {
        let light = (198.0, 219.0, 239.0), dark = (8.0, 48.0, 107.0)
        func mix(_ a: Double, _ b: Double) -> Int { Int((a + (b - a) * t).rounded()) }
        return String(format: "#%02x%02x%02x", mix(light.0, dark.0), mix(light.1, dark.1), mix(light.2, dark.2))
    }

    /// The overview table: perplexity at each multiple and ppl(kL)/ppl(L), one row per newest curve, as HTML.
    /// A length a curve cannot represent reads "unsupported" (why, on hover) instead of a blank; each row says L and
    /// where it came from, and what the numbers were computed over (`ExtrapolationCurve.provenance`); a perplexity
    /// whose interval rests on too few windows is marked with an asterisk.
    public static func ratioTable(_ newest: [ExtrapolationCurve]) -> String {
        let multiples = Array(Set(newest.flatMap { $0.points.map(\.multiple) + $0.unsupported.map(\.multiple) }))
            .sorted()
        var html = "<table class=\"ratios\"><thead><tr><th class=\"text\">run</th><th class=\"text\">checkpoint</th>"
        html += "<th>L</th>"
        for k in multiples { html += "<th>ppl \(Plot.format(k))L</th>" }
        for k in multiples where k > 1 { html += "<th>ppl(\(Plot.format(k))L)/ppl(L)</th>" }
        html += "<th class=\"text\">computed over</th></tr></thead><tbody>\n"
        for curve in newest {
            let ratios = curve.ratios
            let source = curve.trainedLengthSource.map { " title=\"L from \(Plot.escape($0))\"" } ?? ""
            html +=
                "<tr><td class=\"text\">\(Plot.escape(curve.label))</td><td class=\"text\">\(Plot.escape(curve.stepLabel))</td>"
            html += "<td\(source)>\(curve.trainedLength)</td>"
            func cell(_ k: Double, _ value: Double?, format: String) -> String {
                if let value {
                    let few = curve.points.first { abs($0.multiple - k) < 1e-9 }?.fewWindows == true
                    return few
                        ? "<td class=\"few\" title=\"interval from fewer than \(Bootstrap.reliableUnits) windows\">"
                            + String(format: format, value) + "*</td>"
                        : "<td>" + String(format: format, value) + "</td>"
                }
                if let missing = curve.unsupported.first(where: { abs($0.multiple - k) < 1e-9 }) {
                    return "<td class=\"unsupported\" title=\"\(Plot.escape(missing.reason))\">unsupported</td>"
                }
                return "<td>–</td>"
            }
            for k in multiples { html += cell(k, curve.perplexity(atMultiple: k), format: "%.4g") }
            for k in multiples where k > 1 { html += cell(k, ratios[k], format: "%.3g") }
            html += "<td class=\"text provenance\">\(Plot.escape(curve.provenance))</td></tr>\n"
        }
        html += "</tbody></table>\n"
        if newest.contains(where: { $0.points.contains(where: \.fewWindows) }) {
            html +=
                "<p class=\"note\">* interval from fewer than \(Bootstrap.reliableUnits) windows: too few to trust; "
                + "raise --budget.</p>\n"
        }
        return html
    }
}
