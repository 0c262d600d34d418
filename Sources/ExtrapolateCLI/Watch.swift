import ArgumentParser
import Evaluation
import Foundation
import Logging
import Reports
import ResultStore
import Service
import ServiceLifecycle
import TokenData

extension Extrapolate {
    /// `extrapolate watch`: the daemon.
    public struct Watch: AsyncParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Watch training runs and evaluate every complete checkpoint once, at every length.",
            discussion: """
                Each RUN_DIR is a run folder (checkpoints named checkpoint-N/, step-N.safetensors, NAME-N.safetensors, \
                or a plain checkpoint folder) or a folder of run folders. A checkpoint is evaluated only when the \
                reader finds it complete (every safetensors file as long as its header says, every shard of an \
                index present) and its files have not changed for --quiet-seconds; temporary names (*.tmp, \
                tmp-checkpoint-*, *.incomplete, dot-files) are ignored. Each version (a file rewritten in place is a \
                new one) is evaluated once per length, newest checkpoint of each run first, then the older ones; \
                results go to the store (--store, default $XDG_STATE_HOME/extrapolate/results.sqlite) one length \
                at a time, so a crash loses at most the length in progress. Read them with `extrapolate results` \
                and `extrapolate status` while this runs. SIGTERM or SIGINT stops it cleanly. See Docs/daemon.md.
                """
        )

        @OptionGroup var runs: DaemonRuns
        @Flag(help: "Scan once, evaluate everything pending, print the results and exit (cron, scripts).") var once =
            false
        var daemon: DaemonOptions { runs.daemon }

        public init() {}

        public func validate() throws {
            if daemon.json, !once {
                throw ValidationError("--json prints the results of --once; without --once watch prints only its log")
            }
        }

        public func run() async throws {
            let logger = daemon.logger()
            let configuration = try runs.configuration()
            let store = try await openStore(configuration, logger: logger)
            let service = Daemon(configuration: configuration, store: store, logger: logger, once: once)
            if once {
                let summary = try await service.runOnce()
                let report = try await StoredResultsReport.load(from: store, run: nil, detail: daemon.json) { row in
                    configuration.targets.contains { row.checkpoint.hasPrefix($0.folder) }
                }
                print(daemon.json ? try report.json() : report.table())
                let finished = summary.finished.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }
                var line = "jobs this pass: " + (finished.isEmpty ? "none" : finished.joined(separator: ", "))
                if summary.pending > 0 { line += "; \(summary.pending) left pending (see `extrapolate status`)" }
                if summary.unsettled > 0 { line += "; \(summary.unsettled) still being written" }
                FileHandle.standardError.write(Data((line + "\n").utf8))
                return
            }
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(
                    services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)],
                    gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        }
    }
}
