import Evaluation
import Foundation

/// What the daemon saw of a checkpoint at one moment: enough to register one version of it.
public struct Sighting: Sendable, Hashable {
    /// The run's name (its folder's name) and folder.
    public var run: String
    public var runFolder: String
    /// The path evaluation loads, the step read from its name and the naming scheme that matched.
    public var path: String
    public var step: Int?
    public var scheme: String
    /// Total bytes and newest modification time of its files.
    public var size: Int
    public var modified: Double
    /// `xxh64:…` of its files' contents; for an incomplete or invalid sighting, a stand-in made of its stamps.
    public var contentHash: String
    /// `current` for a complete checkpoint; `incomplete` or `invalid` with the reason otherwise.
    public var state: CheckpointState
    public var reason: String?
    /// A private copy of the files taken when they were complete (a file its trainer rewrites in place): the
    /// version is evaluated from it, so a rewrite cannot take it away.
    public var snapshot: String?

    /// A sighting of the checkpoint at `path`, of the run in `runFolder`.
    public init(
        run: String, runFolder: String, path: String, step: Int?, scheme: String, size: Int, modified: Double,
        contentHash: String, state: CheckpointState, reason: String? = nil, snapshot: String? = nil
    ) {
        self.run = run
        self.runFolder = runFolder
        self.path = path
        self.step = step
        self.scheme = scheme
        self.size = size
        self.modified = modified
        self.contentHash = contentHash
        self.state = state
        self.reason = reason
        self.snapshot = snapshot
    }
}

/// What is known of one checkpoint version (one path with one content).
public enum CheckpointState: String, Sendable, Hashable, Codable, CaseIterable {
    /// Complete, and the newest content at its path.
    case current
    /// Still being written (a file shorter than its header, a shard missing), or never finished.
    case incomplete
    /// Can never be read as it is (a malformed header, an unknown layout).
    case invalid
    /// Cannot be read now (permissions, I/O errors): looked at again on every scan.
    case unreadable
    /// The file was rewritten: a newer version of the same path exists.
    case replaced
    /// The files disappeared.
    case gone
    /// A save the next one was written over before it was seen complete (cut off by the trainer, or complete for
    /// less time than a scan takes): it could not be evaluated (kept, so that the gap in the run's steps is
    /// explained).
    case overwritten

    /// Whether a version in this state was never a complete checkpoint (still being written, malformed, unreadable):
    /// when it is replaced or disappears, it describes nothing on disk and its record is dropped.
    public var neverComplete: Bool { self == .incomplete || self == .invalid || self == .unreadable }
}

/// Where a job is.
public enum JobState: String, Sendable, Hashable, Codable, CaseIterable {
    /// Waiting to run (after `notBefore` when a transient failure is being retried).
    case pending
    /// Being evaluated now.
    case running
    /// Every length has a result (evaluated, unsupported or skipped).
    case done
    /// Failed for good (until the checkpoint's files change): the error says why.
    case failed
    /// The checkpoint was rewritten (a newer version has its own job) or disappeared before it finished.
    case replaced
    case gone
    /// Its settings are no longer configured: the daemon was started with other settings (a corrected `--data`, a
    /// run removed from the configuration file). Results it stored stay.
    case cancelled
}

/// A checkpoint version as stored.
public struct CheckpointRecord: Sendable, Hashable, Codable {
    /// The store's identifier of this version.
    public var id: Int64
    /// The run's name (its folder's name) and folder.
    public var run: String
    public var runFolder: String
    /// The path evaluation loads, the step read from its name and the naming scheme that matched.
    public var path: String
    public var step: Int?
    public var scheme: String
    /// Total bytes and newest modification time (seconds since 1970) of its files when it was registered.
    public var size: Int
    public var modified: Double
    /// `xxh64:…` of its files, or a stand-in for an incomplete, invalid or unreadable sighting.
    public var contentHash: String
    /// What is known of it, and why when it cannot be read.
    public var state: CheckpointState
    public var reason: String?
    /// When it was first registered, and last changed.
    public var discovered: Date
    public var updated: Date
    /// The private copy it is evaluated from (`Sighting.snapshot`), until its jobs end.
    public var snapshot: String?

    /// A version as stored.
    public init(
        id: Int64, run: String, runFolder: String, path: String, step: Int?, scheme: String, size: Int,
        modified: Double, contentHash: String, state: CheckpointState, reason: String?, discovered: Date,
        updated: Date, snapshot: String? = nil
    ) {
        self.id = id
        self.run = run
        self.runFolder = runFolder
        self.path = path
        self.step = step
        self.scheme = scheme
        self.size = size
        self.modified = modified
        self.contentHash = contentHash
        self.state = state
        self.reason = reason
        self.discovered = discovered
        self.updated = updated
        self.snapshot = snapshot
    }

    /// Whether its jobs can run: the complete version at its path, or an earlier one kept in a snapshot.
    public var isEvaluable: Bool { state == .current || (state == .replaced && snapshot != nil) }
}

/// The evaluation of one checkpoint version under one set of settings.
public struct JobRecord: Sendable, Hashable, Codable {
    /// The store's identifier of the job, and of the checkpoint version it evaluates.
    public var id: Int64
    public var checkpointID: Int64
    /// The settings (`EvaluationSettings`) and their `contentHash`.
    public var settings: EvaluationSettings
    public var settingsHash: String
    /// Where the job is.
    public var state: JobState
    /// Results recorded so far (lengths × series), and how many were planned (0 until the job first ran).
    public var done: Int
    public var planned: Int
    /// Transient failures so far, and the earliest time of the next attempt.
    public var attempts: Int
    public var notBefore: Date?
    /// The last failure's text.
    public var error: String?
    /// When it was queued, and last changed.
    public var created: Date
    public var updated: Date
    /// The worker running it (or that ran it last), the number of times it has been claimed, and when the running
    /// worker's lease ends.
    public var worker: String?
    public var attempt: Int
    public var leaseUntil: Date?

    /// A job as stored.
    public init(
        id: Int64, checkpointID: Int64, settings: EvaluationSettings, settingsHash: String, state: JobState,
        done: Int, planned: Int, attempts: Int, notBefore: Date?, error: String?, created: Date, updated: Date,
        worker: String? = nil, attempt: Int = 0, leaseUntil: Date? = nil
    ) {
        self.worker = worker
        self.attempt = attempt
        self.leaseUntil = leaseUntil
        self.id = id
        self.checkpointID = checkpointID
        self.settings = settings
        self.settingsHash = settingsHash
        self.state = state
        self.done = done
        self.planned = planned
        self.attempts = attempts
        self.notBefore = notBefore
        self.error = error
        self.created = created
        self.updated = updated
    }
}

/// A job handed to the worker, with its checkpoint and its lease.
public struct ClaimedJob: Sendable, Hashable {
    /// The job, now running.
    public var job: JobRecord
    /// The version it evaluates.
    public var checkpoint: CheckpointRecord
    /// The claim: every write about the job goes with it.
    public var lease: Lease

    /// A job and its version, leased as the job says (`worker`, `attempt`, `leaseUntil`).
    public init(job: JobRecord, checkpoint: CheckpointRecord) {
        self.job = job
        self.checkpoint = checkpoint
        lease = Lease(
            job: job.id, worker: job.worker ?? "", attempt: job.attempt, until: job.leaseUntil ?? .distantFuture)
    }
}

/// A worker's hold on a running job: which job, whose, which attempt, and until when. A write whose lease no longer
/// matches the job's row is refused (`StoreError.lostLease`).
public struct Lease: Sendable, Hashable, Codable {
    public var job: Int64
    public var worker: String
    public var attempt: Int
    public var until: Date

    public init(job: Int64, worker: String, attempt: Int, until: Date) {
        self.job = job
        self.worker = worker
        self.attempt = attempt
        self.until = until
    }
}

/// What a worker says of itself with each heartbeat.
public struct WorkerInfo: Sendable, Hashable, Codable {
    /// Unique per process: `host:pid:random`.
    public var id: String
    public var host: String
    public var pid: Int32
    /// `evaluate`, `discover`, or both.
    public var roles: [String]
    /// The job it is running, if any.
    public var job: Int64?

    public init(id: String, host: String, pid: Int32, roles: [String], job: Int64?) {
        self.id = id
        self.host = host
        self.pid = pid
        self.roles = roles
        self.job = job
    }
}

/// A worker as the store last heard of it.
public struct WorkerRecord: Sendable, Hashable, Codable {
    public var info: WorkerInfo
    /// When it first and last said it was alive (the store's clock).
    public var started: Date
    public var heartbeat: Date

    public init(info: WorkerInfo, started: Date, heartbeat: Date) {
        self.info = info
        self.started = started
        self.heartbeat = heartbeat
    }
}

/// How a (checkpoint content, settings, series, length) ended.
public enum ResultOutcome: String, Sendable, Hashable, Codable {
    /// Evaluated: the numbers are in the point.
    case evaluated
    /// The position method cannot represent the length (learned positions past their table).
    case unsupported
    /// Not attempted: the memory estimate exceeded the limit.
    case skipped
}

/// One stored result: a sweep point and the content key it answers.
public struct ResultRecord: Sendable, Hashable, Codable {
    /// `ResultKey.value`: checkpoint content × architecture × data and scoring × series × length × engine.
    public var key: String
    /// The parts of the key (`ResultKey`).
    public var contentHash: String
    public var architectureHash: String
    public var scoringHash: String
    public var engineVersion: String
    public var series: String
    public var length: Int
    /// Evaluated, unsupported or skipped.
    public var outcome: ResultOutcome
    /// The point exactly as `sweep` reports it (perplexity, mean NLL, tokens, interval, positions, windows).
    public var point: SweepPoint
    /// Why it was not evaluated, and the memory estimate in bytes when that was the reason.
    public var reason: String?
    public var memoryEstimate: Int?
    /// When the evaluation of this length began and ended.
    public var started: Date
    public var finished: Date

    /// What the results table's `protocol` column holds: the evaluation protocol, or "passkey".
    var protocolName: String {
        point.passkey != nil ? EvaluationTask.passkey.rawValue : point.result?.evaluationProtocol.description ?? series
    }

    /// A result for `key`.
    public init(
        key: ResultKey, outcome: ResultOutcome, point: SweepPoint, reason: String? = nil, memoryEstimate: Int? = nil,
        started: Date, finished: Date
    ) {
        self.key = key.value
        contentHash = key.contentHash
        architectureHash = key.architectureHash
        scoringHash = key.scoringHash
        engineVersion = key.engineVersion
        series = key.series
        length = key.length
        self.outcome = outcome
        self.point = point
        self.reason = reason
        self.memoryEstimate = memoryEstimate
        self.started = started
        self.finished = finished
    }
}

/// What identifies a result: the same checkpoint bytes, architecture, scored tokens, series, length and engine give
/// the same numbers, wherever the checkpoint lives and whichever job asked.
public struct ResultKey: Sendable, Hashable, Codable {
    /// `xxh64:…` of the checkpoint's files.
    public var contentHash: String
    /// `Architecture.contentHash` of the architecture the weights were bound to.
    public var architectureHash: String
    /// `EvaluationSettings.scoringHash(targets:)`: the data's content, protocol, span, BOS, per-document cutting.
    public var scoringHash: String
    /// The protocol's name, or a rotary extension's.
    public var series: String
    /// The window length in tokens.
    public var length: Int
    /// `LanguageModel.engineVersion`.
    public var engineVersion: String

    /// The key of one (checkpoint content, architecture, scoring, series, length, engine).
    public init(
        contentHash: String, architectureHash: String, scoringHash: String, series: String, length: Int,
        engineVersion: String
    ) {
        self.contentHash = contentHash
        self.architectureHash = architectureHash
        self.scoringHash = scoringHash
        self.series = series
        self.length = length
        self.engineVersion = engineVersion
    }

    /// The key as stored: one string of every part.
    public var value: String {
        [contentHash, architectureHash, scoringHash, series, String(length), engineVersion].joined(separator: "|")
    }
}

/// A stored result with the checkpoint it is listed under (the same result is listed under every path that holds
/// the same content).
public struct ResultRow: Sendable, Hashable, Codable {
    /// The store's identifier of the checkpoint version it is listed under.
    public var checkpointID: Int64
    /// The run, checkpoint path and step it is listed under, and that version's state.
    public var run: String
    public var checkpoint: String
    public var step: Int?
    public var checkpointState: CheckpointState
    /// The `EvaluationSettings.contentHash` of the job that produced or reused it.
    public var settingsHash: String
    /// The result.
    public var result: ResultRecord
}

/// How much the store holds, cheaply: jobs by state, versions, results, and when a version or job last changed.
public struct StoreCounts: Sendable, Hashable, Codable {
    /// Jobs by `JobState.rawValue`.
    public var jobs: [String: Int]
    public var checkpoints: Int
    public var results: Int
    /// The newest `updated` of any version or job (`nil` for an empty store).
    public var changed: Date?

    public init(jobs: [String: Int], checkpoints: Int, results: Int, changed: Date?) {
        self.jobs = jobs
        self.checkpoints = checkpoints
        self.results = results
        self.changed = changed
    }

    /// Jobs in `state`.
    public func jobs(_ state: JobState) -> Int { jobs[state.rawValue] ?? 0 }

    /// A value that changes whenever a result, a version or a job does (a result is written with its job's progress).
    public var stamp: String {
        "\(results)-\(checkpoints)-\(jobs.values.reduce(0, +))-\(changed?.timeIntervalSince1970 ?? 0)"
    }
}

/// Everything `status` shows: runs, checkpoint versions and jobs.
public struct StoreStatus: Sendable, Hashable, Codable {
    /// Its runs at a glance (what `ResultStore.runs` counts in SQL).
    public var summaries: [RunSummary] { RunSummary.of(self) }

    /// The versions that need a look, with their jobs (`ResultStore.unsettled`): an evaluable version whose latest
    /// job is not done or cancelled (or that has none), and a version that cannot be evaluated unless its latest job
    /// is done or it was replaced or is gone.
    public var unsettled: StoreStatus {
        let latest = Dictionary(grouping: jobs, by: \.checkpointID).compactMapValues { $0.max { $0.id < $1.id } }
        let shown = checkpoints.filter { version in
            let job = latest[version.id]?.state
            return version.isEvaluable
                ? job != .done && job != .cancelled
                : job != .done && version.state != .replaced && version.state != .gone
        }
        let ids = Set(shown.map(\.id))
        return StoreStatus(checkpoints: shown, jobs: jobs.filter { ids.contains($0.checkpointID) }, results: results)
    }

    /// Every checkpoint version, in registration order.
    public var checkpoints: [CheckpointRecord]
    /// Every job, in queueing order.
    public var jobs: [JobRecord]
    /// Results stored, in all.
    public var results: Int
}

/// A store that cannot do what was asked: the file, and SQLite's or the filesystem's reason.
public enum StoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The store could not be opened (missing for a reader, a folder that cannot be created, not a store).
    case cannotOpen(path: String, reason: String)
    /// A read or write failed (disk full, I/O error); nothing of it was written.
    case failed(path: String, operation: String, reason: String)
    /// Another daemon holds the store.
    case locked(path: String, holder: String)
    /// A record the caller named does not exist.
    case missing(String)
    /// A write about a running job whose lease is no longer the caller's: nothing was written.
    case lostLease(Lease)
    /// The store holds a value this version does not know (a state, an outcome): refused, never guessed.
    case corrupt(path: String, what: String)
    /// The database could not be reached (a restart, a network drop); the caller backs off and tries again.
    case unavailable(path: String, reason: String)

    /// What went wrong and what to do.
    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason): "\(path): cannot open the result store: \(reason)"
        case .failed(let path, let operation, let reason): "\(path): \(operation) failed: \(reason)"
        case .locked(let path, let holder):
            "\(path) is in use by another daemon (\(holder)); one daemon writes a store. Stop it, or give this one "
                + "its own --store"
        case .missing(let what): "not in the store: \(what)"
        case .lostLease(let lease):
            "job \(lease.job) is no longer worker \(lease.worker)'s (attempt \(lease.attempt)): its lease ran out and "
                + "another worker took it, or the job was ended meanwhile; nothing was written"
        case .corrupt(let path, let what):
            "\(path): the store holds \(what), which this Extrapolate does not know; upgrade it, or check what "
                + "wrote the store"
        case .unavailable(let path, let reason): "\(path): the store cannot be reached: \(reason)"
        }
    }
}

/// The JSON both database stores keep settings and points in: sorted keys, and infinities and NaN as strings (a
/// perplexity can overflow).
enum StoreJSON {
    static func encode(_ value: some Encodable) throws(StoreError) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do { return String(decoding: try encoder.encode(value), as: UTF8.self) } catch {
            throw .failed(path: "", operation: "encoding a record", reason: "\(error)")
        }
    }

    /// `value`, or `StoreError.corrupt` naming `what` when the store held something this version does not know.
    static func known<T>(_ value: T?, _ what: String) throws -> T {
        guard let value else { throw StoreError.corrupt(path: "", what: what) }
        return value
    }

    static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return decoder
    }
}
