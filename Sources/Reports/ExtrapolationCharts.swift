import Evaluation
import Foundation

/// The extrapolation charts of the web page and the nightly report, drawn by `Plot`: perplexity against multiples
/// of the trained length (log x, L marked, log y), perplexity at each multiple against training step, and loss by
/// position in the window.
public enum ExtrapolationCharts {
    /// One curve per run (its newest checkpoint).
    public static func overview(_ newest: [ExtrapolationCurve]) -> String {
        Plot.svg(
            title: "Newest checkpoint of each run", xLabel: "evaluation length (× trained length L)",
            yLabel: "perplexity", series: newest.map { curveSeries($0, name: "\($0.label) (\($0.stepLabel))") },
            logY: true, markers: [(x: 1, label: "L")], xValue: { "\(Plot.format($0))L" })
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
        return Plot.svg(
            title: "\(run): every checkpoint", xLabel: "evaluation length (× trained length L)", yLabel: "perplexity",
            series: series, logY: true, markers: [(x: 1, label: "L")], xValue: { "\(Plot.format($0))L" })
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
    public static func positions(_ lengths: [(label: String, buckets: [PositionBucket])], title: String) -> String {
        let series = lengths.map { entry in
            Plot.Series(
                name: entry.label,
                points: entry.buckets.map { (x: Double($0.lower + 1), y: $0.meanNLL) },
                hollow: Set(entry.buckets.enumerated().filter { $0.element.firstWindowsOnly }.map(\.offset)))
        }
        return Plot.svg(
            title: title, xLabel: "position in the window (first of each bucket, from 1)", yLabel: "mean NLL (nats)",
            series: series,
            xValue: { "position \(Plot.format($0))" })
    }

    static func curveSeries(_ curve: ExtrapolationCurve, name: String, color: String? = nil) -> Plot.Series {
        Plot.Series(
            name: name, points: curve.points.map { (x: $0.multiple, y: $0.perplexity) },
            band: curve.points.compactMap { point in
                guard let lower = point.lower, let upper = point.upper else { return nil }
                return (x: point.multiple, lower: lower, upper: upper)
            }, color: color)
    }

    /// A light-to-dark blue for `t` in 0…1.
    static func ramp(_ t: Double) -> String {
        let light = (198.0, 219.0, 239.0), dark = (8.0, 48.0, 107.0)
        func mix(_ a: Double, _ b: Double) -> Int { Int((a + (b - a) * t).rounded()) }
        return String(format: "#%02x%02x%02x", mix(light.0, dark.0), mix(light.1, dark.1), mix(light.2, dark.2))
    }

    /// The overview table: perplexity at each multiple and ppl(kL)/ppl(L), one row per newest curve, as HTML.
    public static func ratioTable(_ newest: [ExtrapolationCurve]) -> String {
        let multiples = Extrapolation.multiples(newest)
        var html = "<table class=\"ratios\"><thead><tr><th>run</th><th>checkpoint</th>"
        for k in multiples { html += "<th>ppl \(Plot.format(k))L</th>" }
        for k in multiples where k > 1 { html += "<th>ppl(\(Plot.format(k))L)/ppl(L)</th>" }
        html += "</tr></thead><tbody>\n"
        for curve in newest {
            let ratios = curve.ratios
            html += "<tr><td>\(Plot.escape(curve.label))</td><td>\(Plot.escape(curve.stepLabel))</td>"
            for k in multiples {
                html += "<td>" + (curve.perplexity(atMultiple: k).map { String(format: "%.4g", $0) } ?? "–") + "</td>"
            }
            for k in multiples where k > 1 {
                html += "<td>" + (ratios[k].map { String(format: "%.3g", $0) } ?? "–") + "</td>"
            }
            html += "</tr>\n"
        }
        return html + "</tbody></table>\n"
    }
}
