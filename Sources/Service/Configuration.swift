import Checkpoints
import Engine
import Evaluation
import Foundation
import Reports
import ResultStore
import TokenData

/// A configuration that cannot be used: the file, line or key, and what to write instead.
public enum ConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file is not TOML the reader understands.
    case syntax(file: String, line: Int, reason: String)
    /// A key has a value of the wrong kind or out of range.
    case badValue(file: String, key: String, reason: String)
    /// A key that means nothing here (a typo, most likely).
    case unknownKey(file: String, key: String, known: [String])
    /// Something required is missing.
    case missing(file: String, reason: String)
    /// The file cannot be read.
    case unreadable(file: String, reason: String)

    public var description: String {
        switch self {
        case .syntax(let file, let line, let reason): "\(file):\(line): \(reason)"
        case .badValue(let file, let key, let reason): "\(file): \(key): \(reason)"
        case .unknownKey(let file, let key, let known):
            "\(file): unknown key '\(key)'; known keys here: \(known.joined(separator: ", "))"
        case .missing(let file, let reason): "\(file): \(reason)"
        case .unreadable(let file, let reason): "\(file): cannot read: \(reason)"
        }
    }
}

/// One watched folder and the settings its checkpoints are evaluated with.
public struct WatchTarget: Sendable, Hashable {
    /// An absolute path: a run folder, or a folder of run folders.
    public var folder: String
    /// The evaluation settings: data, lengths, extensions (a passkey job runs at the same lengths and extensions).
    public var settings: EvaluationSettings
    /// What each checkpoint is measured for (`tasks`; default perplexity), and passkey retrieval's settings.
    public var tasks: [EvaluationTask]
    public var passkey: PasskeySettings

    public init(
        folder: String, settings: EvaluationSettings, tasks: [EvaluationTask] = [.perplexity],
        passkey: PasskeySettings = PasskeySettings()
    ) {
        self.folder = Self.absolute(folder)
        self.settings = settings
        self.tasks = tasks
        self.passkey = passkey
    }

    /// The settings of every job a checkpoint here gets: perplexity first, then passkey, as configured.
    public var jobs: [EvaluationSettings] {
        EvaluationTask.allCases.filter(tasks.contains).map { task in
            task == .perplexity ? settings : settings.passkeyJob(passkey)
        }
    }

    /// A target with `overrides`' settings, tasks and passkey settings (`file` and `context` name them in errors).
    init(folder: String, overrides: EvaluationOverrides, file: String, context: String) throws(ConfigurationError) {
        var overrides = overrides
        // Passkey retrieval alone reads no evaluation data.
        if overrides.data == nil, let tasks = overrides.tasks, !tasks.contains(.perplexity) { overrides.data = "" }
        let settings = try overrides.settings(file: file, context: context)
        do {
            self.init(
                folder: folder, settings: settings, tasks: overrides.tasks ?? [.perplexity],
                passkey: try overrides.passkeySettings())
        } catch { throw .badValue(file: file, key: context, reason: error.description) }
    }

    /// `path` as an absolute, standardized path (`~` expanded; relative to `base`, else the working folder).
    /// A store as given: a `postgres://` URL as it is, a path (or `sqlite:PATH`) made absolute.
    public static func storeLocation(_ text: String, relativeTo base: String? = nil) -> String {
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") { return text }
        return absolute(text.hasPrefix("sqlite:") ? String(text.dropFirst("sqlite:".count)) : text, relativeTo: base)
    }

    public static func absolute(_ path: String, relativeTo base: String? = nil) -> String {
        let expanded = (path as NSString).expandingTildeInPath
        if expanded.hasPrefix("/") { return URL(fileURLWithPath: expanded).standardizedFileURL.path }
        let origin = base ?? FileManager.default.currentDirectoryPath
        return URL(fileURLWithPath: (origin as NSString).appendingPathComponent(expanded)).standardizedFileURL.path
    }
}

extension EvaluationOverrides {
    /// The keys a configuration table may set (the flags' names without their dashes).
    static let keys = [
        "data", "dtype", "lengths", "protocol", "budget", "offset", "bos", "bos-token", "per-document", "bootstrap",
        "seed", "extensions", "trained-length", "allow-unknown-config-keys", "tasks", "passkey-depths",
        "passkey-trials", "passkey-seed", "passkey-tokenizer", "passkey-bytes", "precision",
    ]

    /// The settings, with the defaults where nothing was given and the data path made absolute.
    /// - Throws: `ConfigurationError.missing` without data; `.badValue` when the combination is invalid.
    public func settings(file: String, context: String) throws(ConfigurationError) -> EvaluationSettings {
        guard let data else {
            throw .missing(
                file: file,
                reason: "\(context): no evaluation data; give --data or `data = \"…\"` (passkey retrieval alone, "
                    + "--tasks passkey, needs none)")
        }
        var absolute = self
        absolute.data = data.isEmpty ? data : WatchTarget.absolute(data)
        do { return try absolute.settings() } catch {
            throw .badValue(file: file, key: context, reason: error.description)
        }
    }

    /// Reads the evaluation keys of `table`; relative data paths are resolved against `base`.
    init(table: [String: TOMLValue], file: String, context: String, base: String) throws(ConfigurationError) {
        self.init()
        let read = TableReader(table: table, file: file, context: context)
        data = try read.string("data").map { WatchTarget.absolute($0, relativeTo: base) }
        dtype = try read.parsed("dtype", as: "uint16 or uint32") { TokenDType(rawValue: $0) }
        lengths = try read.parsed("lengths", as: "a length grid like \"1x,2x,4x\" or \"512,1024\"") {
            try LengthGrid(parsing: $0)
        }
        evaluationProtocol = try read.parsed("protocol", as: "nonoverlapping, sliding:S or last-half") {
            EvaluationProtocol(parsing: $0)
        }
        budget = try read.integer("budget", minimum: 1)
        offset = try read.integer("offset", minimum: 0)
        bos = try read.parsed("bos", as: "none, first or every") { BOSPlacement(rawValue: $0) }
        bosToken = try read.integer("bos-token", minimum: 0).map { Int32(clamping: $0) }
        perDocument = try read.boolean("per-document")
        resamples = try read.integer("bootstrap", minimum: 0)
        seed = try read.integer("seed", minimum: 0).map { UInt64($0) }
        trainedLength = try read.integer("trained-length", minimum: 2)
        allowUnknownConfigKeys = try read.boolean("allow-unknown-config-keys")
        precision = try read.parsed("precision", as: "float32 or bf16") { Precision(rawValue: $0) }
        if let names = try read.strings("tasks") {
            do { tasks = try EvaluationTask.parseList(names.joined(separator: ",")) } catch {
                throw .badValue(file: file, key: read.name("tasks"), reason: error.description)
            }
        }
        passkeyDepths = try read.numbers("passkey-depths", within: 0...100)
        passkeyTrials = try read.integer("passkey-trials", minimum: 1)
        passkeySeed = try read.integer("passkey-seed", minimum: 0).map { UInt64($0) }
        passkeyTokenizer = try read.string("passkey-tokenizer").map { WatchTarget.absolute($0, relativeTo: base) }
        passkeyBytes = try read.boolean("passkey-bytes")
        if let names = try read.strings("extensions") {
            extensions = try names.map { (name: String) throws(ConfigurationError) -> RotaryExtension in
                guard let fix = RotaryExtension(rawValue: name) else {
                    throw .badValue(
                        file: file, key: read.name("extensions"),
                        reason:
                            "'\(name)' is not one of \(RotaryExtension.allCases.map(\.rawValue).joined(separator: ", "))"
                    )
                }
                return fix
            }
        }
    }
}

/// Everything the daemon runs with.
public struct DaemonConfiguration: Sendable {
    /// The watched folders and their settings (a checkpoint takes the deepest folder that holds it).
    public var targets: [WatchTarget]
    /// The store: a SQLite path, or a `postgres://` URL (`StoreAddress`).
    public var store: String
    /// Compute threads (`nil`: every core).
    public var threads: Int?
    /// Seconds a checkpoint's files must stay unchanged before it is queued.
    public var quietSeconds: Double = 10
    /// Seconds between full rescans (the only mechanism with `pollOnly`).
    public var rescanSeconds: Double = 60
    /// Never use inotify (network filesystems where it is silent: NFS, Lustre).
    public var pollOnly = false
    /// Lengths whose memory estimate exceeds this many bytes are recorded as skipped.
    public var memoryLimit: Int?
    /// Seconds a stop waits for the length in progress before abandoning it (the job stays pending).
    public var shutdownSeconds: Double = 30
    /// Transient failures (I/O) are retried after `retrySeconds × 2^attempts`, at most `maximumRetrySeconds`, up to
    /// `maximumAttempts` times.
    public var retrySeconds: Double = 5
    public var maximumRetrySeconds: Double = 600
    public var maximumAttempts = 8
    /// The nightly report and the alert thresholds (`[report]` and `[alerts]`).
    public var report = ReportSettings()
    /// Most bytes the private copies of files rewritten in place may take together (`SnapshotArea`).
    public var snapshotLimit = 16 << 30
    /// Seconds a claimed job stays this worker's without a renewal; the worker renews it every length and every
    /// `leaseSeconds / 3` while a length runs, and a job whose lease ran out is taken by another worker.
    public var leaseSeconds: Double = 60
    /// Seconds between heartbeats (`/api/workers`).
    public var heartbeatSeconds: Double = 5
    /// What this process does: `evaluate` (claims jobs), `discover` (scans folders), or both (`serve`, `watch`).
    public var roles: [String] = ["discover", "evaluate"]
    /// Where those copies live (`--snapshot-folder`): by default `snapshots/` beside a SQLite store, or in the state
    /// folder with PostgreSQL. In a fleet, workers read the copies a discoverer made: put it on the shared filesystem.
    public var snapshotFolder: String {
        get { chosenSnapshotFolder ?? (localFolder as NSString).appendingPathComponent("snapshots") }
        set { chosenSnapshotFolder = newValue }
    }
    private var chosenSnapshotFolder: String?

    /// The store as an address (`store` read).
    public var storeAddress: StoreAddress {
        get throws(StoreError) { try StoreAddress(parsing: store) }
    }

    /// The folder this process keeps its files in beside the store (`StoreAddress.localFolder`).
    public var localFolder: String {
        (try? storeAddress.localFolder) ?? (store as NSString).deletingLastPathComponent
    }

    public init(targets: [WatchTarget], store: String) {
        self.targets = targets
        self.store = store
    }

    /// Every folder in `folders` with the settings `overrides` and the defaults give (the command line without
    /// `--config`), and the default store.
    /// - Throws: `ConfigurationError` without data or for an invalid combination.
    public init(folders: [String], overrides: EvaluationOverrides) throws(ConfigurationError) {
        let target = try WatchTarget(folder: ".", overrides: overrides, file: "command line", context: "watch")
        self.init(
            targets: folders.map {
                WatchTarget(folder: $0, settings: target.settings, tasks: target.tasks, passkey: target.passkey)
            }, store: StoreLocation.defaultPath())
    }

    /// Why the daemon cannot start with this configuration, in one line: evaluation data or a watched folder that
    /// does not exist (a typo would otherwise queue jobs that fail, or watch nothing, without a word). `nil`: none.
    public var startProblem: String? {
        let manager = FileManager.default
        for target in targets {
            var isFolder: ObjCBool = false
            if !manager.fileExists(atPath: target.folder, isDirectory: &isFolder) {
                return "the run folder \(target.folder) does not exist: check the path, or create it before the "
                    + "trainer writes into it"
            }
            if !isFolder.boolValue {
                return
                    "\(target.folder) is a file, not a run folder: give the folder the trainer writes checkpoints into"
            }
            if target.tasks.contains(.perplexity), !manager.fileExists(atPath: target.settings.data.path) {
                return "the evaluation data \(target.settings.data.path) does not exist (--data, or `data =` in the "
                    + "configuration): check the path, or make it with `extrapolate dataset pack`"
            }
        }
        return nil
    }

    /// The target whose folder holds `path` most specifically.
    public func target(for path: String) -> WatchTarget? {
        targets.filter { path == $0.folder || path.hasPrefix($0.folder.hasSuffix("/") ? $0.folder : $0.folder + "/") }
            .max { $0.folder.count < $1.folder.count }
    }

    static let topLevelKeys = [
        "store", "threads", "quiet-seconds", "rescan-seconds", "poll-only", "memory-limit", "shutdown-seconds",
        "snapshot-folder", "lease-seconds",
        "snapshot-limit",
        "evaluation", "runs", "report", "alerts",
    ]

    /// Reads a TOML configuration file. Command-line `overrides` win over the file's `[evaluation]` table, and a
    /// `[[runs]]` entry's own keys win over both.
    ///
    /// ```toml
    /// store = "/var/lib/extrapolate/results.sqlite"
    /// quiet-seconds = 10
    /// memory-limit = "16G"
    ///
    /// [evaluation]            # defaults for every run
    /// data = "valid.tokens.zst"
    /// lengths = "1x,2x,4x,8x,16x"
    ///
    /// [[runs]]
    /// folder = "runs/alibi"
    ///
    /// [[runs]]
    /// folder = "runs/rotary"
    /// protocol = "sliding:256"
    /// extensions = ["yarn"]
    /// ```
    public static func load(
        file: String, overrides: EvaluationOverrides = EvaluationOverrides(), extraFolders: [String] = []
    ) throws(ConfigurationError) -> DaemonConfiguration {
        let text: String
        do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
            throw .unreadable(file: file, reason: FileProblem.describe(error, path: file))
        }
        let base = (WatchTarget.absolute(file) as NSString).deletingLastPathComponent
        let root = TableReader(table: try TOMLReader.parse(text, file: file), file: file, context: "")
        try root.rejectUnknown(topLevelKeys)
        var defaults = EvaluationOverrides()
        if let evaluation = try root.table("evaluation") {
            try TableReader(table: evaluation, file: file, context: "evaluation").rejectUnknown(
                EvaluationOverrides.keys)
            defaults = try EvaluationOverrides(table: evaluation, file: file, context: "evaluation", base: base)
        }
        defaults = defaults.overridden(by: overrides)
        var targets: [WatchTarget] = []
        for (index, run) in try root.tables("runs").enumerated() {
            let context = "runs[\(index + 1)]"
            let reader = TableReader(table: run, file: file, context: context)
            try reader.rejectUnknown(["folder"] + EvaluationOverrides.keys)
            guard let folder = try reader.string("folder") else {
                throw .missing(file: file, reason: "\(context): every [[runs]] entry needs `folder = \"…\"`")
            }
            let own = try EvaluationOverrides(table: run, file: file, context: context, base: base)
            targets.append(
                try WatchTarget(
                    folder: WatchTarget.absolute(folder, relativeTo: base),
                    overrides: defaults.overridden(by: own).overridden(by: overrides), file: file, context: context))
        }
        for folder in extraFolders {
            targets.append(try WatchTarget(folder: folder, overrides: defaults, file: file, context: folder))
        }
        guard !targets.isEmpty else {
            throw .missing(file: file, reason: "no folders to watch: add [[runs]] entries or pass RUN_DIR arguments")
        }
        var configuration = DaemonConfiguration(
            targets: targets,
            store: try root.string("store").map { WatchTarget.storeLocation($0, relativeTo: base) }
                ?? StoreLocation.defaultPath())
        configuration.threads = try root.integer("threads", minimum: 1)
        configuration.quietSeconds = try root.number("quiet-seconds", minimum: 0) ?? configuration.quietSeconds
        configuration.rescanSeconds = try root.number("rescan-seconds", minimum: 0.1) ?? configuration.rescanSeconds
        configuration.pollOnly = try root.boolean("poll-only") ?? false
        configuration.shutdownSeconds = try root.number("shutdown-seconds", minimum: 0) ?? configuration.shutdownSeconds
        configuration.memoryLimit = try root.parsed("memory-limit", as: "a size like \"16G\" or \"512M\"") {
            ByteSize.parse($0)
        }
        configuration.snapshotLimit =
            try root.parsed("snapshot-limit", as: "a size like \"16G\" or \"512M\"") { ByteSize.parse($0) }
            ?? configuration.snapshotLimit
        if let folder = try root.string("snapshot-folder") {
            configuration.snapshotFolder = WatchTarget.absolute(folder, relativeTo: base)
        }
        configuration.leaseSeconds = try root.number("lease-seconds", minimum: 1) ?? configuration.leaseSeconds
        configuration.report = try ReportSettings(root: root, base: base)
        return configuration
    }
}

/// The nightly report and when alerts are raised.
///
/// ```toml
/// [report]
/// time = "03:00"                 # local time; without it no report is scheduled
/// directory = "reports"          # default: a "reports" folder beside the store
/// notify-command = "mail -s 'extrapolation report' me@lab.org < \"$1\"/report.txt"
/// notify-timeout = 60            # seconds; past it the command (and what it started) is stopped
///
/// [alerts]
/// regression = 0.10              # ppl(kL) rose by more than 10% while ppl(L) fell
/// ratio = 4.0                    # ppl(16L)/ppl(L) above 4 …
/// ratio-multiple = 16            # … at this k
/// passkey-drop = 0.2             # passkey accuracy at a length fell by more than 20 points
/// ```
public struct ReportSettings: Sendable, Hashable {
    public var thresholds = AlertThresholds()
    /// Local time of day (hours, minutes) of the nightly report; `nil`: none scheduled.
    public var schedule: TimeOfDay?
    /// Where reports are written (`nil`: `reports/` beside the store).
    public var directory: String?
    /// Run by `/bin/sh -c` after each scheduled report, with the report's folder as `$1` (and in
    /// `EXTRAPOLATE_REPORT`): hook mail or chat to it.
    public var notifyCommand: String?
    /// Seconds the notify command may run before it and everything it started are stopped (SIGTERM, then SIGKILL).
    public var notifyTimeout: Double = 60

    public init() {}

    /// The folder reports go to for a daemon whose own files are in `localFolder` (`DaemonConfiguration.localFolder`).
    public func folder(localFolder: String) -> String {
        directory ?? (localFolder as NSString).appendingPathComponent("reports")
    }

    init(root: TableReader, base: String) throws(ConfigurationError) {
        if let table = try root.table("report") {
            let read = TableReader(table: table, file: root.file, context: "report")
            try read.rejectUnknown(["time", "directory", "notify-command", "notify-timeout"])
            schedule = try read.parsed("time", as: "a time of day like \"03:00\"") { TimeOfDay(parsing: $0) }
            directory = try read.string("directory").map { WatchTarget.absolute($0, relativeTo: base) }
            notifyCommand = try read.string("notify-command")
            notifyTimeout = try read.number("notify-timeout", minimum: 0.1) ?? notifyTimeout
        }
        if let table = try root.table("alerts") {
            let read = TableReader(table: table, file: root.file, context: "alerts")
            try read.rejectUnknown(["regression", "ratio", "ratio-multiple", "passkey-drop"])
            thresholds.regression = try read.number("regression", minimum: 0) ?? thresholds.regression
            thresholds.ratio = try read.number("ratio", minimum: 1) ?? thresholds.ratio
            thresholds.ratioMultiple = try read.number("ratio-multiple", minimum: 1) ?? thresholds.ratioMultiple
            thresholds.passkeyDrop = try read.number("passkey-drop", minimum: 0) ?? thresholds.passkeyDrop
        }
    }
}

/// A local time of day, `HH:MM`.
public struct TimeOfDay: Sendable, Hashable {
    public var hour: Int
    public var minute: Int

    public init?(parsing text: String) {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let hour = Int(parts[0]), let minute = Int(parts[1]), (0..<24).contains(hour),
            (0..<60).contains(minute)
        else { return nil }
        (self.hour, self.minute) = (hour, minute)
    }

    /// The first moment at this time of day after `now`, in `calendar`'s time zone.
    public func next(after now: Date, calendar: Calendar = .current) -> Date {
        calendar.nextDate(
            after: now, matching: DateComponents(hour: hour, minute: minute, second: 0), matchingPolicy: .nextTime)
            ?? now.addingTimeInterval(86400)
    }
}

/// Typed reads of one TOML table, each error naming the key with its table.
struct TableReader {
    var table: [String: TOMLValue]
    var file: String
    var context: String

    func name(_ key: String) -> String { context.isEmpty ? key : "\(context).\(key)" }

    func rejectUnknown(_ known: [String]) throws(ConfigurationError) {
        if let unknown = table.keys.sorted().first(where: { !known.contains($0) }) {
            throw .unknownKey(file: file, key: name(unknown), known: known)
        }
    }

    private func bad(_ key: String, _ expected: String) -> ConfigurationError {
        .badValue(file: file, key: name(key), reason: "expected \(expected), found \(table[key]?.kind ?? "nothing")")
    }

    func string(_ key: String) throws(ConfigurationError) -> String? {
        guard let value = table[key] else { return nil }
        guard case .string(let text) = value else { throw bad(key, "a string") }
        return text
    }

    func strings(_ key: String) throws(ConfigurationError) -> [String]? {
        guard let value = table[key] else { return nil }
        if case .string(let text) = value {
            return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        guard case .array(let items) = value else { throw bad(key, "an array of strings") }
        return try items.map { (item: TOMLValue) throws(ConfigurationError) -> String in
            guard case .string(let text) = item else { throw bad(key, "an array of strings") }
            return text
        }
    }

    func integer(_ key: String, minimum: Int) throws(ConfigurationError) -> Int? {
        guard let value = table[key] else { return nil }
        guard case .integer(let number) = value else { throw bad(key, "an integer") }
        guard number >= minimum else {
            throw .badValue(file: file, key: name(key), reason: "must be at least \(minimum), found \(number)")
        }
        return number
    }

    func number(_ key: String, minimum: Double) throws(ConfigurationError) -> Double? {
        let number: Double
        switch table[key] {
        case nil: return nil
        case .integer(let value): number = Double(value)
        case .float(let value): number = value
        default: throw bad(key, "a number")
        }
        guard number >= minimum else {
            throw .badValue(file: file, key: name(key), reason: "must be at least \(minimum), found \(number)")
        }
        return number
    }

    /// An array of numbers each within `range` (integers or floats).
    func numbers(_ key: String, within range: ClosedRange<Double>) throws(ConfigurationError) -> [Double]? {
        guard let value = table[key] else { return nil }
        guard case .array(let items) = value, !items.isEmpty else { throw bad(key, "a non-empty array of numbers") }
        return try items.map { (item: TOMLValue) throws(ConfigurationError) -> Double in
            let number: Double
            switch item {
            case .integer(let value): number = Double(value)
            case .float(let value): number = value
            default: throw bad(key, "an array of numbers")
            }
            guard range.contains(number) else {
                throw .badValue(
                    file: file, key: name(key),
                    reason: "each must be from \(range.lowerBound) to \(range.upperBound), found \(number)")
            }
            return number
        }
    }

    func boolean(_ key: String) throws(ConfigurationError) -> Bool? {
        guard let value = table[key] else { return nil }
        guard case .boolean(let flag) = value else { throw bad(key, "true or false") }
        return flag
    }

    func table(_ key: String) throws(ConfigurationError) -> [String: TOMLValue]? {
        guard let value = table[key] else { return nil }
        guard case .table(let inner) = value else { throw bad(key, "a [\(key)] table") }
        return inner
    }

    func tables(_ key: String) throws(ConfigurationError) -> [[String: TOMLValue]] {
        guard let value = table[key] else { return [] }
        guard case .array(let items) = value else { throw bad(key, "[[\(key)]] entries") }
        return try items.map { (item: TOMLValue) throws(ConfigurationError) -> [String: TOMLValue] in
            guard case .table(let inner) = item else { throw bad(key, "[[\(key)]] entries") }
            return inner
        }
    }

    /// A string key turned into a value by `parse`; `nil` from `parse` is an error describing `expected`.
    /// The string at `key` parsed by `parse`: nil, or a thrown error (its reason is added to the message), means the
    /// value is not `expected`.
    func parsed<T>(_ key: String, as expected: String, _ parse: (String) throws -> T?) throws(ConfigurationError) -> T?
    {
        guard let text = try string(key) else { return nil }
        let parsed: T?
        do { parsed = try parse(text) } catch {
            throw .badValue(file: file, key: name(key), reason: "'\(text)' is not \(expected): \(error)")
        }
        guard let value = parsed else {
            throw .badValue(file: file, key: name(key), reason: "'\(text)' is not \(expected)")
        }
        return value
    }
}
