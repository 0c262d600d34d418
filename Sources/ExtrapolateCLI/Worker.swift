import ArgumentParser
import Evaluation
import Foundation
import Logging
import ResultStore
import Service
import ServiceLifecycle

extension Extrapolate {
    /// `extrapolate worker`: a fleet member that only evaluates.
    public struct Worker: AsyncParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Evaluate jobs from a shared PostgreSQL store: one member of a fleet (Docs/fleet.md).",
            discussion: """
                Claims the next job (each run's newest checkpoint first, then the back-fill), evaluates it length by \
                length and writes each result with the job's progress, renewing its lease as it goes; any number \
                of workers on any number of machines share the queue and never take one job twice. It scans no \
                folders: `serve` or `watch` (with --no-evaluate, or evaluating too) discover the checkpoints, and \
                every worker must see the run folders and the evaluation data at the same paths (a shared \
                filesystem). A worker that dies or loses the database leaves its job to be taken again when its \
                lease runs out; a late write from it is refused. SIGTERM stops it cleanly.
                """
        )

        @Option(help: "The shared store: postgres://USER@HOST:PORT/DB (password: URL, PGPASSWORD or ~/.pgpass).")
        var store: String
        @Option(parsing: .unconditional, help: "Compute threads (default: $EXTRAPOLATE_THREADS, else every core).")
        var threads: Int?
        @Option(help: "Record lengths whose memory estimate exceeds this (16G, 512M) as skipped.") var memoryLimit:
            String?
        @Option(help: "Seconds a claimed job stays this worker's without a renewal (default 60).")
        var leaseSeconds: Double?
        @Option(help: "Seconds a stop waits for the length in progress before abandoning it (default 30).")
        var shutdownSeconds: Double?
        @Option(help: "Log lines as text or json (one object per line).") var logFormat: DaemonOptions.LogFormat =
            .text
        @Option(help: "trace, debug, info, notice, warning, error or critical.") var logLevel: Logger.Level = .info

        public init() {}

        public func validate() throws {
            let address = try StoreAddress.validated(store)
            guard address.isShared else {
                throw ValidationError(
                    "a worker shares a PostgreSQL store (--store postgres://…); with a SQLite store, `watch` and "
                        + "`serve` evaluate themselves")
            }
            if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
            if let leaseSeconds, leaseSeconds < 1 { throw ValidationError("--lease-seconds must be at least 1") }
            if let memoryLimit, ByteSize.parse(memoryLimit) == nil {
                throw ValidationError("--memory-limit: '\(memoryLimit)' is not a size like 16G or 512M")
            }
        }

        public func run() async throws {
            var options = DaemonOptions()
            options.logFormat = logFormat
            options.logLevel = logLevel
            let logger = options.logger()
            var configuration = DaemonConfiguration(targets: [], store: store)
            configuration.roles = ["evaluate"]
            configuration.threads =
                threads ?? ProcessInfo.processInfo.environment["EXTRAPOLATE_THREADS"].flatMap(Int.init)
            configuration.memoryLimit = memoryLimit.flatMap(ByteSize.parse)
            if let leaseSeconds { configuration.leaseSeconds = leaseSeconds }
            if let shutdownSeconds { configuration.shutdownSeconds = shutdownSeconds }
            let opened = try await openStore(configuration, logger: logger)
            let service = Daemon(configuration: configuration, store: opened, logger: logger)
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(
                    services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)],
                    gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        }
    }
}
