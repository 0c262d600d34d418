import ArgumentParser
import Engine
import Evaluation
import Foundation
import Logging
import ResultStore
import Service

/// What `watch` and `serve` share: the folders or configuration file, the evaluation settings and how the daemon runs.
struct DaemonRuns: ParsableArguments {
    @Argument(help: "Run folders, or folders of run folders.") var folders: [String] = []
    @Option(help: "A TOML file with several runs, each with its own settings (Docs/daemon.md).") var config: String?
    @OptionGroup var evaluation: EvaluationOptions
    @OptionGroup var lengths: LengthOptions
    @OptionGroup var tasks: DaemonTasks
    @OptionGroup var daemon: DaemonOptions
    @Option(help: "Products in float32 (exact, default) or bf16 (AVX512-BF16; results labelled and stored apart).")
    var precision: Precision?

    func validate() throws {
        if folders.isEmpty, config == nil { throw ValidationError("give run folders to watch, or --config FILE") }
        try daemon.validateValues()
    }

    /// The evaluation flags as overrides of the configuration file's settings.
    var overrides: EvaluationOverrides {
        var overrides = evaluation.overrides()
        overrides.lengths = lengths.lengths
        overrides.extensions = lengths.chosenExtensions
        overrides.tasks = tasks.tasks
        overrides.passkeyDepths = tasks.depths
        overrides.passkeyTrials = tasks.trials
        overrides.passkeySeed = tasks.passkeySeed
        overrides.passkeyTokenizer = tasks.tokenizer.map { WatchTarget.absolute($0) }
        overrides.passkeyBytes = tasks.bytes ? true : nil
        overrides.precision = precision
        return overrides
    }

    /// The daemon's configuration: a `--config` file with the flags over it, or the flags alone for every folder.
    /// A configuration that cannot work (no data file, a folder that does not exist) is refused here, in one line,
    /// before anything is queued.
    func configuration() throws -> DaemonConfiguration {
        var configuration: DaemonConfiguration
        do {
            if let config {
                configuration = try DaemonConfiguration.load(file: config, overrides: overrides, extraFolders: folders)
            } else {
                configuration = try DaemonConfiguration(folders: folders, overrides: overrides)
            }
        } catch { throw refusal(error.description) }
        daemon.apply(to: &configuration)
        if let problem = configuration.startProblem { throw refusal(problem) }
        return configuration
    }
}

/// How the daemon runs: store, threads, timing, limits, logging.
struct DaemonOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The result store: a SQLite file, or postgres://USER@HOST:PORT/DB shared by a fleet (Docs/fleet.md).",
            discussion:
                "Default: $EXTRAPOLATE_STORE, else $XDG_STATE_HOME/extrapolate/results.sqlite. A PostgreSQL password "
                + "comes from the URL, PGPASSWORD or ~/.pgpass; ?sslmode=disable|prefer|require|verify-full."))
    var store: String?
    @Flag(help: "Discover checkpoints and serve, but evaluate nothing: `extrapolate worker` processes do (fleet).")
    var noEvaluate = false
    @Option(help: "Seconds a claimed job stays this process's without a renewal (default 60; a fleet's setting).")
    var leaseSeconds: Double?
    @Option(help: "Where copies of files rewritten in place go (default: beside a SQLite store); shared in a fleet.")
    var snapshotFolder: String?
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
    @Option(
        help: ArgumentHelp(
            "Most disk the copies of checkpoints rewritten in place may take (default 16G).",
            discussion:
                "A file saved again and again under one name (nanoGPT's ckpt.pt) is copied beside the store the "
                + "moment each save is complete, and evaluated from the copy, so no save is missed; copies are "
                + "deleted once evaluated."))
    var snapshotLimit: String?
    @Option(help: "Log lines as text or json (one object per line).") var logFormat: LogFormat = .text
    @Option(help: "trace, debug, info, notice, warning, error or critical.") var logLevel: Logger.Level = .info
    @Flag(help: "With --once: print the results as JSON (Docs/json.md).") var json = false

    enum LogFormat: String, ExpressibleByArgument, CaseIterable { case text, json }

    func validateValues() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if let quietSeconds, quietSeconds < 0 { throw ValidationError("--quiet-seconds must not be negative") }
        if let rescanSeconds, rescanSeconds < 0.1 { throw ValidationError("--rescan-seconds must be at least 0.1") }
        if let leaseSeconds, leaseSeconds < 1 { throw ValidationError("--lease-seconds must be at least 1") }
        if let store { _ = try StoreAddress.validated(store) }
        for (flag, value) in [("--memory-limit", memoryLimit), ("--snapshot-limit", snapshotLimit)] {
            if let value, ByteSize.parse(value) == nil {
                throw ValidationError("\(flag): '\(value)' is not a size like 16G or 512M")
            }
        }
        if let text = ProcessInfo.processInfo.environment["EXTRAPOLATE_THREADS"], threads == nil,
            (Int(text) ?? 0) < 1
        {
            throw ValidationError("EXTRAPOLATE_THREADS must be a whole number of at least 1, not '\(text)'")
        }
    }

    /// Flags (and `EXTRAPOLATE_THREADS`) over what the configuration says.
    func apply(to configuration: inout DaemonConfiguration) {
        if let store { configuration.store = WatchTarget.storeLocation(store) }
        if noEvaluate { configuration.roles = ["discover"] }
        if let leaseSeconds { configuration.leaseSeconds = leaseSeconds }
        if let snapshotFolder { configuration.snapshotFolder = WatchTarget.absolute(snapshotFolder) }
        if let threads = threads ?? ProcessInfo.processInfo.environment["EXTRAPOLATE_THREADS"].flatMap(Int.init) {
            configuration.threads = threads
        }
        if let quietSeconds { configuration.quietSeconds = quietSeconds }
        if let rescanSeconds { configuration.rescanSeconds = rescanSeconds }
        if pollOnly { configuration.pollOnly = true }
        if let limit = memoryLimit.flatMap(ByteSize.parse) { configuration.memoryLimit = limit }
        if let shutdownSeconds { configuration.shutdownSeconds = shutdownSeconds }
        if let limit = snapshotLimit.flatMap(ByteSize.parse) { configuration.snapshotLimit = limit }
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
