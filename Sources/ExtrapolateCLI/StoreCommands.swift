import ArgumentParser
import Evaluation
import Foundation
import Reports
import ResultStore
import Service

/// Where `status` and `results` read: `--store`, else the daemon's default.
struct StoreOption: ParsableArguments {
    @Option(help: "The result store (default: $EXTRAPOLATE_STORE, else $XDG_STATE_HOME/extrapolate/results.sqlite).")
    var store: String?

    /// The store, opened read-only (a running daemon keeps writing it, or it belongs to another user).
    func open() async throws -> any ResultStore {
        let given = store.map { WatchTarget.storeLocation($0) } ?? StoreLocation.defaultPath()
        do throws(StoreError) {
            return try await StoreAddress(parsing: given).open(writing: false, connections: 2, waitSeconds: 5)
        } catch {
            throw CommandError(error.description)
        }
    }
}

extension Extrapolate {
    /// `extrapolate status`.
    public struct Status: AsyncParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Runs, checkpoints and the queue of a result store.",
            discussion: """
                Each run is counted by state: pending, running, done (with results recorded/planned), failed (with \
                the error), incomplete (still being written, or never finished: the reason says what is missing), \
                invalid, replaced (rewritten in place: the new version has its own line) or gone. Below each run, \
                the versions that need a look (not done yet, failed, unreadable; the newest 20) are listed; \
                --run NAME lists every version of one run, --all of every run. Opens the store read-only, so it \
                works while the daemon runs.
                """
        )

        @OptionGroup var store: StoreOption
        @Option(name: .customLong("run"), help: "Only this run, with every version listed.") var runName: String?
        @Flag(help: "List every version of every run (a lab's store holds thousands).") var all = false
        @Flag(help: "Print JSON (Docs/json.md) instead of text: every version (of --run's run, when given).")
        var json = false

        public init() {}

        public func run() async throws {
            let opened = try await store.open()
            // By default only the versions that need a look are read, beside every run's counts: a lab's store
            // holds tens of thousands.
            let listsEvery = all || json || runName != nil
            let status = try await listsEvery ? opened.status(run: runName) : opened.unsettled()
            if let runName, status.checkpoints.isEmpty {
                let runs = try await opened.runs().map(\.name)
                throw CommandError(
                    "no run named '\(runName)' in \(opened.location); runs: "
                        + (runs.isEmpty ? "none yet" : runs.joined(separator: ", ")))
            }
            let report = StatusReport(status, summaries: listsEvery ? nil : try await opened.runs())
            print(json ? try report.json() : report.table(everyVersion: listsEvery))
        }
    }

    /// `extrapolate results`.
    public struct Results: AsyncParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Every result in a store: perplexity by run, checkpoint and length.",
            discussion: """
                One row per checkpoint, series and length, with the protocol, tokens scored, perplexity, mean NLL and \
                95% bootstrap interval. A result computed once is listed under every path that holds the same \
                checkpoint content. Opens the store read-only, so it works while the daemon runs.
                """
        )

        @OptionGroup var store: StoreOption
        @Option(name: .customLong("run"), help: "Only this run (the run folder's name).") var runName: String?
        @Flag(help: "Print JSON (Docs/json.md) instead of text.") var json = false
        @Flag(help: "Print CSV instead of text.") var csv = false
        @Option(
            help: ArgumentHelp(
                "Only perplexity or only passkey results (default: both; CSV: perplexity).",
                discussion: "--task passkey --csv writes one row per passkey cell (length × depth)."))
        var task: EvaluationTask?

        public init() {}

        public func validate() throws {
            if json && csv { throw ValidationError("--json and --csv are exclusive") }
        }

        public func run() async throws {
            let opened = try await store.open()
            let report = try await StoredResultsReport.load(from: opened, run: runName, detail: json) { row in
                task == nil || row.task == task
            }
            if csv && task == .passkey {
                print(StoredPasskeyReport(report.result).csv(), terminator: "")
                return
            }
            if let runName, report.result.isEmpty {
                let runs = try await opened.runs().map(\.name)
                guard runs.contains(runName) else {
                    throw CommandError(
                        "no run named '\(runName)' in \(opened.location); runs: "
                            + (runs.isEmpty ? "none yet" : runs.joined(separator: ", ")))
                }
            }
            if json {
                print(try report.json())
            } else if csv {
                print(report.csv(), terminator: "")
            } else {
                print(report.table())
            }
        }
    }
}
