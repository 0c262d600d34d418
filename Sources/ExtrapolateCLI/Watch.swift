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

        public func run() async throws {
            let logger = daemon.logger()
            let configuration = try runs.configuration(logger: logger)
            let store = try SQLiteStore(writingTo: configuration.store)
            let service = Daemon(configuration: configuration, store: store, logger: logger, once: once)
            if once {
                let summary = try await service.runOnce()
                let rows = try store.results(run: nil).filter { row in
                    configuration.targets.contains { row.checkpoint.hasPrefix($0.folder) }
                }
                let report = StoredResultsReport(rows)
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

/// What `watch` and `serve` share: the folders or configuration file, the evaluation settings and how the daemon runs.
struct DaemonRuns: ParsableArguments {
    @Argument(help: "Run folders, or folders of run folders.") var folders: [String] = []
    @Option(help: "A TOML file with several runs, each with its own settings (Docs/daemon.md).") var config: String?
    @OptionGroup var evaluation: DaemonEvaluationOptions
    @OptionGroup var daemon: DaemonOptions

    func validate() throws {
        if folders.isEmpty, config == nil { throw ValidationError("give run folders to watch, or --config FILE") }
        try daemon.validateValues()
    }

    /// The daemon's configuration: a `--config` file with the flags over it, or the flags alone for every folder.
    func configuration(logger: Logger) throws -> DaemonConfiguration {
        try daemonConfiguration(
            folders: folders, config: config, evaluation: evaluation, daemon: daemon, logger: logger)
    }
}

/// The daemon's configuration from `watch`/`serve` arguments: a `--config` file with the flags over it, or the flags
/// alone for every folder given.
func daemonConfiguration(
    folders: [String], config: String?, evaluation: DaemonEvaluationOptions, daemon: DaemonOptions, logger: Logger
) throws -> DaemonConfiguration {
    var configuration: DaemonConfiguration
    do {
        if let config {
            configuration = try DaemonConfiguration.load(
                file: config, overrides: try evaluation.overrides(), extraFolders: folders)
        } else {
            let settings = try evaluation.overrides().settings(file: "command line", context: "watch")
            configuration = DaemonConfiguration(
                targets: folders.map { WatchTarget(folder: $0, settings: settings) }, store: StoreLocation.defaultPath()
            )
        }
    } catch let error as ConfigurationError {
        throw ValidationError(error.description)
    }
    daemon.apply(to: &configuration)
    for target in configuration.targets where !FileManager.default.fileExists(atPath: target.folder) {
        logger.warning(
            "the folder does not exist yet; it is watched from when it appears",
            metadata: ["folder": "\(target.folder)"])
    }
    return configuration
}

/// The evaluation settings `watch` takes on the command line: every one optional, so a `--config` file's values
/// stand unless a flag is given.
struct DaemonEvaluationOptions: ParsableArguments {
    @Option(help: "A .tokens.zst dataset, or a raw little-endian token file (then --dtype says its width).")
    var data: String?
    @Option(help: "Width of a raw token file (default uint16).") var dtype: TokenDType?
    @Option(
        help: "Lengths: multiples of the trained length (1x,2x), tokens (512,1024), or a mix; default 1x,2x,4x,8x,16x.",
        transform: { text in try LengthGrid(parsing: text) })
    var lengths: LengthGrid?
    @Option(help: "nonoverlapping (default), sliding:S (stride S), or last-half.")
    var `protocol`: EvaluationProtocol?
    @Option(
        parsing: .unconditional,
        help: "Targets scored at every length (default: 4 × max(16 × trained length, the longest length)).")
    var budget: Int?
    @Option(parsing: .unconditional, help: "First token of the span to score (default 0).") var offset: Int?
    @Option(help: "BOS in front of windows: none, first or every (needs --bos-token).") var bos: BOSPlacement?
    @Option(help: "The BOS token id.") var bosToken: Int?
    @Flag(help: "Cut windows inside each document.") var perDocument = false
    @Option(parsing: .unconditional, help: "Bootstrap resamples for the 95% intervals (default 1000; 0: none).")
    var bootstrap: Int?
    @Option(help: "Seed of the bootstrap (default 0).") var seed: UInt64?
    @Option(
        parsing: .upToNextOption,
        help: "Rotary models: also evaluate these extensions (linear ntk dynamic yarn llama3).")
    var extensions: [RotaryExtension] = []

    func overrides() throws -> EvaluationOverrides {
        var overrides = EvaluationOverrides()
        overrides.data = data
        overrides.dtype = dtype
        overrides.lengths = lengths
        overrides.evaluationProtocol = `protocol`
        overrides.budget = budget
        overrides.offset = offset
        overrides.bos = bos
        overrides.bosToken = bosToken.map { Int32(clamping: $0) }
        overrides.perDocument = perDocument ? true : nil
        overrides.resamples = bootstrap
        overrides.seed = seed
        overrides.extensions = extensions.isEmpty ? nil : extensions
        return overrides
    }
}

/// How the daemon runs: store, threads, timing, limits, logging.
struct DaemonOptions: ParsableArguments {
    @Option(help: "The result store (default: $EXTRAPOLATE_STORE, else $XDG_STATE_HOME/extrapolate/results.sqlite).")
    var store: String?
    @Option(parsing: .unconditional, help: "Compute threads (default: $EXTRAPOLATE_THREADS, else every core).")
    var threads: Int?
    @Option(help: "Seconds a checkpoint's files must stay unchanged before it is evaluated (default 10).")
    var quietSeconds: Double?
    @Option(help: "Seconds between full rescans of the folders (default 60).") var rescanSeconds: Double?
    @Flag(help: "Never use inotify; rescan only (NFS, Lustre and other filesystems where inotify is silent).")
    var pollOnly = false
    @Option(help: "Record lengths whose memory estimate exceeds this (16G, 512M) as skipped instead of trying them.")
    var memoryLimit: String?
    @Option(help: "Seconds a stop waits for the length in progress before abandoning it (default 30).")
    var shutdownSeconds: Double?
    @Option(help: "Log lines as text or json (one object per line).") var logFormat: LogFormat = .text
    @Option(help: "trace, debug, info, notice, warning, error or critical.") var logLevel: Logger.Level = .info
    @Flag(help: "With --once: print the results as JSON (Docs/json.md).") var json = false

    enum LogFormat: String, ExpressibleByArgument, CaseIterable { case text, json }

    func validateValues() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if let quietSeconds, quietSeconds < 0 { throw ValidationError("--quiet-seconds must not be negative") }
        if let rescanSeconds, rescanSeconds < 0.1 { throw ValidationError("--rescan-seconds must be at least 0.1") }
        if let memoryLimit, ByteSize.parse(memoryLimit) == nil {
            throw ValidationError("--memory-limit: '\(memoryLimit)' is not a size like 16G or 512M")
        }
        if let text = ProcessInfo.processInfo.environment["EXTRAPOLATE_THREADS"], threads == nil,
            (Int(text) ?? 0) < 1
        {
            throw ValidationError("EXTRAPOLATE_THREADS must be a whole number of at least 1, not '\(text)'")
        }
    }

    /// Flags (and `EXTRAPOLATE_THREADS`) over what the configuration says.
    func apply(to configuration: inout DaemonConfiguration) {
        if let store { configuration.store = WatchTarget.absolute(store) }
        if let threads = threads ?? ProcessInfo.processInfo.environment["EXTRAPOLATE_THREADS"].flatMap(Int.init) {
            configuration.threads = threads
        }
        if let quietSeconds { configuration.quietSeconds = quietSeconds }
        if let rescanSeconds { configuration.rescanSeconds = rescanSeconds }
        if pollOnly { configuration.pollOnly = true }
        if let limit = memoryLimit.flatMap(ByteSize.parse) { configuration.memoryLimit = limit }
        if let shutdownSeconds { configuration.shutdownSeconds = shutdownSeconds }
    }

    func logger() -> Logger {
        let format = logFormat
        let level = logLevel
        var logger = Logger(label: "extrapolate") { label in
            var handler: any LogHandler =
                format == .json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        logger.logLevel = level
        return logger
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
