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

/// One run at a glance (`ResultStore.runs`).
public struct RunSummary: Sendable, Hashable, Codable {
    public var name: String
    /// Its run folder (the first, when folders in several watched trees share the name).
    public var folder: String
    /// Versions by `CheckpointState.rawValue`, jobs by `JobState.rawValue`.
    public var checkpoints: [String: Int]
    public var jobs: [String: Int]
    /// The highest step of a current version.
    public var newestStep: Int?
    /// Results recorded by its jobs (a result one job reused from another counts for each).
    public var results: Int
    /// The newest `updated` of its versions and jobs.
    public var changed: Date?

    public init(
        name: String, folder: String, checkpoints: [String: Int] = [:], jobs: [String: Int] = [:],
        newestStep: Int? = nil, results: Int = 0, changed: Date? = nil
    ) {
        self.name = name
        self.folder = folder
        self.checkpoints = checkpoints
        self.jobs = jobs
        self.newestStep = newestStep
        self.results = results
        self.changed = changed
    }

    /// Changes whenever a version, a job or a result of the run does (a result is written with its job's
    /// progress): what a cache of the run's results is kept under.
    public var stamp: String {
        let versions = checkpoints.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let queue = jobs.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return "\(changed?.timeIntervalSince1970 ?? 0)|\(versions.joined(separator: ","))|"
            + "\(queue.joined(separator: ","))|\(results)"
    }

    /// Summaries from the two grouped queries every store runs: versions by (run, state) and jobs by (run, state).
    static func assemble(
        versions: [(run: String, folder: String, state: String, count: Int, newestStep: Int?, changed: Date?)],
        jobs: [(run: String, state: String, count: Int, done: Int, changed: Date?)]
    ) -> [RunSummary] {
        var runs: [String: RunSummary] = [:]
        for row in versions {
            var run = runs[row.run] ?? RunSummary(name: row.run, folder: row.folder)
            run.folder = min(run.folder, row.folder)
            run.checkpoints[row.state, default: 0] += row.count
            if let step = row.newestStep { run.newestStep = max(run.newestStep ?? step, step) }
            run.changed = [run.changed, row.changed].compactMap { $0 }.max()
            runs[row.run] = run
        }
        for row in jobs {
            guard var run = runs[row.run] else { continue }
            run.jobs[row.state, default: 0] += row.count
            run.results += row.done
            run.changed = [run.changed, row.changed].compactMap { $0 }.max()
            runs[row.run] = run
        }
        return runs.values.sorted { $0.name < $1.name }
    }

    /// The summaries of the runs in `status` (what `ResultStore.runs` counts in SQL).
    static func of(_ status: StoreStatus) -> [RunSummary] {
        let versions = Dictionary(grouping: status.checkpoints) { "\($0.run)\u{0}\($0.state.rawValue)" }.values.map {
            group in
            let first = group[0]
            return (
                run: first.run, folder: group.map(\.runFolder).min() ?? first.runFolder, state: first.state.rawValue,
                count: group.count, newestStep: first.state == .current ? group.compactMap(\.step).max() : nil,
                changed: group.map(\.updated).max()
            )
        }
        let runOf = Dictionary(uniqueKeysWithValues: status.checkpoints.map { ($0.id, $0.run) })
        let jobs = Dictionary(grouping: status.jobs) { "\(runOf[$0.checkpointID] ?? "")\u{0}\($0.state.rawValue)" }
            .values
            .map { group in
                (
                    run: runOf[group[0].checkpointID] ?? "", state: group[0].state.rawValue, count: group.count,
                    done: group.map(\.done).reduce(0, +), changed: group.map(\.updated).max()
                )
            }
        return assemble(versions: versions, jobs: jobs)
    }

    /// The ids of the versions `status` lists by default (`StoreStatus.unsettled` in SQL): those whose latest job is not done (or that have none),
    /// and those that cannot be evaluated for a reason to read (incomplete, invalid, unreadable, overwritten).
    static let unsettledSQL = """
        SELECT id FROM (
            SELECT c.id, c.state, c.snapshot,
                (SELECT j.state FROM jobs j WHERE j.checkpoint_id = c.id ORDER BY j.id DESC LIMIT 1) AS job_state
            FROM checkpoints c) v
        WHERE CASE WHEN v.state = 'current' OR (v.state = 'replaced' AND v.snapshot IS NOT NULL)
            THEN COALESCE(v.job_state, 'pending') NOT IN ('done', 'cancelled')
            ELSE COALESCE(v.job_state, '') <> 'done' AND v.state NOT IN ('replaced', 'gone') END
        """

    /// The grouped queries behind `assemble`, the same on SQLite and PostgreSQL; `named` is the placeholder of one
    /// run's name, or `nil` for every run.
    static func versionsSQL(named: String?) -> String {
        """
        SELECT run, min(run_folder), state, count(*), max(CASE WHEN state = 'current' THEN step END), max(updated)
        FROM checkpoints \(named.map { "WHERE run = \($0) " } ?? "")GROUP BY run, state
        """
    }

    static func jobsSQL(named: String?) -> String {
        """
        SELECT c.run, j.state, count(*), sum(j.done), max(j.updated)
        FROM jobs j JOIN checkpoints c ON c.id = j.checkpoint_id \(named.map { "WHERE c.run = \($0) " } ?? "")
        GROUP BY c.run, j.state
        """
    }
}

/// The results table's SQL both database stores share.
enum ResultSQL {
    /// The columns a result is inserted with, in the order of their values.
    static let columns = """
        key, content_hash, architecture_hash, scoring_hash, engine_version, series, length, outcome, protocol,
        perplexity, mean_nll, tokens, interval_lower, interval_upper, reason, memory_estimate, seconds, started,
        finished, point
        """

    /// A result is written once: only one skipped for memory is replaced (by its evaluation).
    static let replacingSkipped = """
        ON CONFLICT (key) DO UPDATE SET outcome = excluded.outcome, perplexity = excluded.perplexity,
            mean_nll = excluded.mean_nll, tokens = excluded.tokens,
            interval_lower = excluded.interval_lower, interval_upper = excluded.interval_upper,
            reason = excluded.reason, memory_estimate = excluded.memory_estimate,
            seconds = excluded.seconds, started = excluded.started, finished = excluded.finished,
            point = excluded.point
        WHERE results.outcome = 'skipped'
        """

    /// Every result listed under each version whose jobs produced or reused it, with the version's run, path, step
    /// and state; `conditions` (on `c`, the version) are `AND`-ed. Rows of one (version, key) come once per job
    /// linking it, the first job's first (`ResultRow` keeps that one).
    static func listing(_ conditions: [String]) -> String {
        """
        SELECT c.id AS checkpoint_id, c.run AS checkpoint_run, c.path AS checkpoint_path,
            c.step AS checkpoint_step, c.state AS checkpoint_state, j.settings_hash AS settings_hash, x.*
        FROM checkpoints c JOIN jobs j ON j.checkpoint_id = c.id JOIN job_results l ON l.job_id = j.id
        JOIN results x ON x.key = l.result_key
        \(conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND "))
        ORDER BY j.id, l.result_key
        """
    }
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
