import ArgumentParser
import Foundation
import Logging
import Reports
import ResultStore
import Server
import Service
import ServiceLifecycle

extension Extrapolate {
    /// `extrapolate serve`: the daemon with its HTTP API, web page and metrics.
    public struct Serve: AsyncParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract:
                "Watch training runs, evaluate every checkpoint, and serve the results: a web page, an API, metrics.",
            discussion: """
                Everything `watch` does (same folders, options and --config file; see `extrapolate watch --help`), \
                plus an HTTP server: open the printed address for the extrapolation curves of every run, updated \
                live as results arrive. The JSON API is described at /openapi.yaml (Docs/http-api.yaml), Prometheus \
                metrics are at /metrics, health at /healthz and /readyz. It listens on 127.0.0.1:8080 unless \
                --listen says otherwise; any address other than loopback needs --token (or EXTRAPOLATE_TOKEN), and \
                then every request must send it. With a [report] section in the --config file it also writes the \
                nightly report (Docs/daemon.md). SIGTERM or SIGINT stops it cleanly; under systemd (Type=notify) it \
                reports readiness itself (Service/extrapolate.service).
                """
        )

        @OptionGroup var runs: DaemonRuns
        @Option(help: "HOST:PORT to listen on (:PORT is loopback on PORT; port 0 picks a free one).")
        var listen = "127.0.0.1:8080"
        @Option(
            help: "A token every request must carry (default: $EXTRAPOLATE_TOKEN). Needed to listen beyond loopback.")
        var token: String?
        var daemon: DaemonOptions { runs.daemon }

        public init() {}

        public func validate() throws {
            if daemon.json {
                throw ValidationError("serve prints no results, so --json means nothing here: /api/results serves JSON")
            }
            if ServerConfiguration.parseListen(listen) == nil {
                throw ValidationError("--listen: '\(listen)' is not HOST:PORT (for example 127.0.0.1:8080 or :9000)")
            }
        }

        public func run() async throws {
            let logger = daemon.logger()
            let configuration = try runs.configuration()
            let (host, port) = ServerConfiguration.parseListen(listen)!
            var server = ServerConfiguration(
                host: host, port: port, token: token ?? ProcessInfo.processInfo.environment["EXTRAPOLATE_TOKEN"])
            server.thresholds = configuration.report.thresholds
            if let refusal = server.refusal {
                // One line and the usage-error status, without the usage text (the command line was well formed).
                FileHandle.standardError.write(Data("Error: \(refusal)\n".utf8))
                throw ExitCode.validationFailure
            }
            if let problem = PortProbe.problem(host: host, port: port) { throw ServeError(message: problem) }
            let store = try await openStore(configuration, logger: logger)
            let metrics = ServerMetrics()
            let service = Daemon(configuration: configuration, store: store, logger: logger, observer: metrics)
            let state = ServerState(store: store, daemon: service, metrics: metrics, configuration: server)
            let shown = host.contains(":") ? "[\(host)]" : host
            let application = buildApplication(state: state, logger: logger) { bound in
                let address = "http://\(shown == "0.0.0.0" ? "127.0.0.1" : shown):\(bound)/"
                FileHandle.standardError.write(Data("serving \(address)  (store: \(store.location))\n".utf8))
                SystemdNotifier.notify("READY=1\nSTATUS=serving \(address)")
            }
            var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
                .init(
                    service: application, successTerminationBehavior: .gracefullyShutdownGroup,
                    failureTerminationBehavior: .gracefullyShutdownGroup),
                .init(
                    service: service, successTerminationBehavior: .gracefullyShutdownGroup,
                    failureTerminationBehavior: .gracefullyShutdownGroup),
            ]
            if let schedule = configuration.report.schedule {
                services.append(
                    .init(
                        service: ReportScheduler(
                            settings: configuration.report, schedule: schedule, store: store,
                            folder: configuration.report.folder(localFolder: configuration.localFolder), logger: logger),
                        failureTerminationBehavior: .gracefullyShutdownGroup))
            }
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(
                    services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            do {
                try await group.run()
            } catch {
                SystemdNotifier.notify("STOPPING=1")
                throw ServeError(message: "the server stopped: \(error)")
            }
            SystemdNotifier.notify("STOPPING=1")
        }
    }
}

/// Why `serve` could not start or keep running, in one line.
struct ServeError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
