import ArgumentParser
import Checkpoints
import Foundation
import Reports
import ResultStore
import Service

extension Extrapolate {
    /// `extrapolate report`: the nightly report, on demand.
    public struct Report: AsyncParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Write the extrapolation report of a store: HTML (no scripts), CSV, JSON and text.",
            discussion: """
                Writes report.html (the newest checkpoint's curve of every run, the ratio table, every run's \
                checkpoints, what changed since the previous report in the same folder, failures and regression \
                alerts), report.csv (every result), report.json (Docs/json.md) and report.txt (a summary for mail) \
                into --out. `serve` writes the same report every night when its --config file has a [report] time. \
                Thresholds come from the [alerts] section of --config, or the flags.
                """
        )

        @OptionGroup var store: StoreOption
        @Option(help: "The folder to write into (created if needed).") var out: String
        @Option(help: "A daemon configuration file whose [alerts] thresholds to use.") var config: String?
        @Option(help: "Alert when ppl(kL) rose by more than this fraction while ppl(L) fell (default 0.10).")
        var regression: Double?
        @Option(help: "Alert when ppl(kL)/ppl(L) exceeds this at the newest checkpoint (default 4).") var ratio: Double?
        @Option(help: "The k of that ratio (default 16).") var ratioMultiple: Double?
        @Option(
            help:
                "Alert when passkey accuracy at a length fell by more than this between a run's two newest checkpoints (default 0.2)."
        )
        var passkeyDrop: Double?

        public init() {}

        public func run() async throws {
            var thresholds = AlertThresholds()
            if let config {
                do { thresholds = try DaemonConfiguration.load(file: config).report.thresholds } catch {
                    throw CommandError(error.description)
                }
            }
            if let regression { thresholds.regression = regression }
            if let ratio { thresholds.ratio = ratio }
            if let ratioMultiple { thresholds.ratioMultiple = ratioMultiple }
            if let passkeyDrop { thresholds.passkeyDrop = passkeyDrop }
            let opened = try await store.open()
            let rows = try await opened.results(run: nil).map(StoredResultsReport.Row.init)
            let status = try await opened.status()
            let report: NightlyReport
            do { report = try NightlyReport.write(to: out, rows: rows, status: status, thresholds: thresholds) } catch {
                throw CommandError("cannot write \(out): \(FileProblem.describe(error, path: out, folder: true))")
            }
            print(report.text(), terminator: "")
            FileHandle.standardError.write(
                Data("wrote \(out)/report.html, report.csv, passkey.csv, report.json, report.txt\n".utf8))
        }
    }
}
