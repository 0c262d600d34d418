import Foundation
import ResultStore

/// The nightly report: one self-contained HTML page (inline SVG, no script), `report.csv`, `report.json` and a
/// plain-text `report.txt`, covering every run: the newest checkpoint's curve, what changed since the previous
/// report in the same folder, failures and regression alerts.
public struct NightlyReport: ResultReport {
    /// What changed for one run and series since the previous report.
    public struct Change: Sendable, Hashable, Codable {
        public var run: String
        public var series: String
        /// Checkpoints evaluated since the previous report (steps, or file names without one).
        public var newCheckpoints: [String]
        /// The newest checkpoint then and now.
        public var previous: String?
        public var current: String
        /// Perplexity at each multiple: then, now, and the relative change.
        public var lengths: [LengthChange]
    }

    public struct LengthChange: Sendable, Hashable, Codable {
        public var multiple: Double
        public var previous: Double?
        public var current: Double
        public var change: Double?
    }

    /// A checkpoint that failed or cannot be read.
    public struct Failure: Sendable, Hashable, Codable {
        public var run: String
        public var checkpoint: String
        public var step: Int?
        public var state: String
        public var error: String
    }

    public struct Content: Sendable, Hashable, Codable {
        public var generated: Date
        /// When the previous report in the folder was written (`nil`: this is the first).
        public var previousReport: Date?
        public var thresholds: AlertThresholds
        public var newest: [ExtrapolationCurve]
        public var changes: [Change]
        public var alerts: [Alert]
        public var failures: [Failure]
        /// Every checkpoint version with results at this report (what the next report compares against).
        public var evaluatedCheckpoints: [Int64]
        /// Passkey retrieval of each run's newest checkpoint with passkey results: accuracy at each length and
        /// series (mean over depths). Empty without passkey jobs; `nil` in a report written before them.
        public var passkey: [StoredPasskeyReport.LengthAccuracy]?
    }

    public let result: Content
    /// Every curve (not in the JSON: the CSV has every result).
    let curves: [ExtrapolationCurve]
    let rows: [StoredResultsReport.Row]

    /// The report of `rows` and `status`, compared with `previous` (the `report.json` of the last report).
    public init(
        rows: [StoredResultsReport.Row], status: StoreStatus, thresholds: AlertThresholds, previous: Content?,
        now: Date = Date()
    ) {
        self.rows = rows
        curves = Extrapolation.curves(rows)
        let newest = Extrapolation.newest(curves)
        let known = Set(previous?.evaluatedCheckpoints ?? [])
        var changes: [Change] = []
        for curve in newest {
            let then = previous?.newest.first { $0.run == curve.run && $0.series == curve.series }
            let added = curves.filter {
                $0.run == curve.run && $0.series == curve.series && !known.contains($0.checkpointID)
            }
            if then?.checkpointID == curve.checkpointID, added.isEmpty { continue }
            changes.append(
                Change(
                    run: curve.run, series: curve.series, newCheckpoints: added.map(\.stepLabel),
                    previous: then?.stepLabel, current: curve.stepLabel,
                    lengths: curve.points.map { point in
                        let before = then?.perplexity(atMultiple: point.multiple)
                        return LengthChange(
                            multiple: point.multiple, previous: before, current: point.perplexity,
                            change: before.map { point.perplexity / $0 - 1 })
                    }))
        }
        let versions = Dictionary(uniqueKeysWithValues: status.checkpoints.map { ($0.id, $0) })
        var failures = status.jobs.filter { $0.state == .failed }.compactMap { job -> Failure? in
            guard let version = versions[job.checkpointID] else { return nil }
            return Failure(
                run: version.run, checkpoint: version.path, step: version.step, state: "failed",
                error: job.error ?? "")
        }
        failures += status.checkpoints.filter { [.invalid, .unreadable].contains($0.state) }.map {
            Failure(run: $0.run, checkpoint: $0.path, step: $0.step, state: $0.state.rawValue, error: $0.reason ?? "")
        }
        let passkey = StoredPasskeyReport(rows)
        let accuracies = passkey.byLength
        let newestPasskey = accuracies.filter { entry in
            entry.step == accuracies.filter { $0.run == entry.run }.compactMap(\.step).max()
        }
        result = Content(
            generated: now, previousReport: previous?.generated, thresholds: thresholds, newest: newest,
            changes: changes,
            alerts: Extrapolation.alerts(curves, thresholds: thresholds)
                + passkey.alerts(threshold: thresholds.passkeyDrop),
            failures: failures, evaluatedCheckpoints: Array(Set(curves.map(\.checkpointID))).sorted(),
            passkey: newestPasskey)
    }

    /// Writes `report.html`, `report.csv`, `report.json` and `report.txt` into `directory` (created if needed),
    /// comparing with the `report.json` already there; returns the folder.
    @discardableResult
    public static func write(
        to directory: String, rows: [StoredResultsReport.Row], status: StoreStatus, thresholds: AlertThresholds,
        now: Date = Date()
    ) throws -> NightlyReport {
        let folder = URL(fileURLWithPath: directory)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let previousFile = folder.appendingPathComponent("report.json")
        // The first night has no previous report, and one an older version wrote may not decode: either way the
        // report shows no day-over-day change (it says "first report"), which is all a missing one could mean.
        let previous = (try? Data(contentsOf: previousFile)).flatMap {
            try? ReportJSON.decode(Content.self, from: $0)
        }
        let report = NightlyReport(rows: rows, status: status, thresholds: thresholds, previous: previous, now: now)
        // Each file is written whole under a temporary name and renamed: a reader never sees half a report.
        for (name, text) in [
            ("report.html", report.html()), ("report.csv", StoredResultsReport(rows: rows).csv()),
            ("passkey.csv", StoredPasskeyReport(rows).csv()),
            ("report.txt", report.text()), ("report.json", try report.json()),
        ] {
            let final = folder.appendingPathComponent(name)
            let temporary = folder.appendingPathComponent(".\(name).tmp")
            try Data(text.utf8).write(to: temporary)
            guard rename(temporary.path, final.path) == 0 else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: final.path])
            }
        }
        return report
    }

    /// A short plain-text summary (for mail).
    public func text() -> String {
        var lines = ["Extrapolation report, \(Self.date(result.generated))"]
        if let previous = result.previousReport { lines.append("Changes since \(Self.date(previous)).") }
        lines.append("")
        lines.append("Alerts: \(result.alerts.count)")
        lines += result.alerts.map { "  ! \($0.message)" }
        lines.append("")
        for change in result.changes {
            var line = "\(change.run) [\(change.series)] \(change.previous.map { "\($0) → " } ?? "")\(change.current)"
            if !change.newCheckpoints.isEmpty { line += "; new: \(change.newCheckpoints.joined(separator: ", "))" }
            lines.append(line)
            for length in change.lengths {
                var entry = String(format: "    %@L: %.4g", Alert.format(length.multiple), length.current)
                if let change = length.change { entry += String(format: " (%+.1f%%)", change * 100) }
                lines.append(entry)
            }
        }
        if result.changes.isEmpty { lines.append("No new results since the previous report.") }
        if let passkey = result.passkey, !passkey.isEmpty {
            lines.append("")
            lines.append("Passkey retrieval, newest checkpoint of each run (accuracy, mean over depths):")
            for entry in passkey {
                let series = entry.series == "model" ? "" : " [\(entry.series)]"
                lines.append(
                    String(
                        format: "  %@%@ %@ %@L: %d/%d (%.0f%%)", entry.run, series,
                        entry.step.map { "step \($0)" } ?? "", Alert.format(entry.multiple), entry.retrieved,
                        entry.trials, entry.accuracy * 100))
            }
        }
        lines.append("")
        lines.append("Failures: \(result.failures.count)")
        lines += result.failures.map { "  \($0.run) \($0.checkpoint): \($0.state): \($0.error)" }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The HTML page: inline SVG, inline style, no script, no external resource.
    public func html() -> String {
        let e = Plot.escape
        var html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>Extrapolation report \(Self.date(result.generated))</title>
            <style>
            body { font-family: Helvetica, Arial, sans-serif; margin: 1.5em; color: #222; }
            table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0 1em; }
            th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
            th:first-child, td:first-child { text-align: left; }
            .worse { color: #a00; } .better { color: #176d17; } .alert { color: #a00; }
            svg { max-width: 100%; height: auto; }
            </style></head><body>
            <h1>Extrapolation report</h1>
            <p>Generated \(Self.date(result.generated))\(result.previousReport.map { "; changes since the report of \(Self.date($0))" } ?? "; the first report in this folder").
            Files: <a href="report.csv">report.csv</a>, <a href="report.json">report.json</a>, <a href="passkey.csv">passkey.csv</a>.</p>

            """
        html += "<h2>Alerts (\(result.alerts.count))</h2>\n"
        html +=
            result.alerts.isEmpty
            ? "<p>None.</p>\n"
            : "<ul>" + result.alerts.map { "<li class=\"alert\">\(e($0.message))</li>" }.joined() + "</ul>\n"
        html += "<h2>Newest checkpoint of each run</h2>\n"
        html += ExtrapolationCharts.overview(result.newest)
        html += ExtrapolationCharts.ratioTable(result.newest)
        html += "<h2>Changes since the previous report</h2>\n"
        if result.changes.isEmpty { html += "<p>No new results.</p>\n" }
        for change in result.changes {
            html +=
                "<h3>\(e(change.run)) · \(e(change.series)): \(e(change.previous.map { "\($0) → " } ?? ""))\(e(change.current))</h3>\n"
            if !change.newCheckpoints.isEmpty {
                html += "<p>New: \(e(change.newCheckpoints.joined(separator: ", ")))</p>\n"
            }
            html += "<table><tr><th>length</th><th>before</th><th>now</th><th>change</th></tr>\n"
            for length in change.lengths {
                let delta = length.change.map { String(format: "%+.1f%%", $0 * 100) } ?? "–"
                let kind = (length.change ?? 0) > 0.005 ? "worse" : (length.change ?? 0) < -0.005 ? "better" : ""
                html +=
                    "<tr><td>\(Alert.format(length.multiple))L</td><td>\(length.previous.map { String(format: "%.4g", $0) } ?? "–")</td>"
                    + "<td>\(String(format: "%.4g", length.current))</td><td class=\"\(kind)\">\(delta)</td></tr>\n"
            }
            html += "</table>\n"
        }
        html += "<h2>Runs</h2>\n"
        for run in Array(Set(curves.map(\.run))).sorted() {
            let mine = curves.filter { $0.run == run }
            html += ExtrapolationCharts.checkpoints(mine, run: run)
            if mine.filter({ $0.step != nil }).count > 1 { html += ExtrapolationCharts.bySteps(mine, run: run) }
        }
        let passkey = StoredPasskeyReport(rows)
        if !passkey.rows.isEmpty {
            html += "<h2>Passkey retrieval</h2>\n<p>Every cell: <a href=\"passkey.csv\">passkey.csv</a>.</p>\n"
            for run in Array(Set(passkey.rows.map(\.run))).sorted() {
                html += passkey.lengthsSVG(run: run)
                if Set(passkey.rows.filter { $0.run == run }.compactMap(\.step)).count > 1 {
                    html += passkey.stepsSVG(run: run)
                }
                if let newest = passkey.results.filter({ $0.run == run }).last,
                    let heatmap = passkey.heatmapSVG(checkpoint: newest.checkpointID)
                {
                    html += heatmap
                }
            }
        }
        html += "<h2>Failures (\(result.failures.count))</h2>\n"
        if result.failures.isEmpty {
            html += "<p>None.</p>\n"
        } else {
            html += "<table><tr><th>run</th><th>checkpoint</th><th>state</th><th>error</th></tr>\n"
            for failure in result.failures {
                html +=
                    "<tr><td>\(e(failure.run))</td><td>\(e(failure.checkpoint))</td><td>\(e(failure.state))</td>"
                    + "<td style=\"text-align:left\">\(e(failure.error))</td></tr>\n"
            }
            html += "</table>\n"
        }
        return html + "</body></html>\n"
    }

    static func date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd HH:mm zzz"
        return formatter.string(from: date)
    }
}
