import Evaluation
import Foundation

/// Where the daemon keeps runs, checkpoint versions, jobs and results: one protocol, three engines (`SQLiteStore`,
/// the embedded default; `PostgresStore`, for a fleet of processes on many machines; `MemoryStore`, for tests).
///
/// Every method is one transaction: a result, its link to the job and the job's progress are written together or not
/// at all, so a kill loses at most the result being computed and never records one twice. Times are the store's
/// clock (PostgreSQL's `now()`), never a caller's, so machines with skewed clocks agree on leases and retries.
///
/// A claimed job is leased: it belongs to one worker, for one attempt, until its lease runs out. Every write about a
/// running job (`record`, `link`, `renew`, `finish`) is guarded by its lease and fails with `StoreError.lostLease`
/// when the job is no longer that worker's (the lease expired and another took it, or the scanner ended it): the
/// worker then stops the job and writes nothing more. `rescue` returns expired leases to the queue.
public protocol ResultStore: AnyObject, Sendable {
    /// Whether this process is the only one working on the store (SQLite's writer lock, the in-memory store): then
    /// every running job at a start is an interrupted one, requeued at once instead of when its lease runs out.
    var isExclusive: Bool { get }

    /// Where the store is, for messages: a SQLite path, a PostgreSQL URL without its password.
    var location: String { get }

    /// Records a sighting of a checkpoint: a new (path, content) becomes a new version, and earlier versions of the
    /// same path become `replaced` (their unfinished jobs too, unless the version has a snapshot to be evaluated
    /// from); an earlier version that was never complete (`CheckpointState.neverComplete`) is dropped instead. An
    /// existing version takes the sighting's state. Registering the same sighting twice (two discoverers) is one
    /// version.
    /// - Returns: the version, and whether it is new.
    func register(_ sighting: Sighting) async throws(StoreError) -> (record: CheckpointRecord, isNew: Bool)

    /// The version at `path` now (not replaced, not gone), if any: a restart reuses its content hash when the
    /// files' sizes and times are unchanged, instead of reading every checkpoint again.
    func liveVersion(path: String) async throws(StoreError) -> CheckpointRecord?

    /// Marks every live version in run folders under `root` whose path is not in `present` as `gone`, with their
    /// unfinished jobs (a version that was never complete is dropped instead). Only a process that scanned `root`
    /// may call it. - Returns: the versions marked.
    func markGone(under root: String, present: Set<String>) async throws(StoreError) -> [CheckpointRecord]

    /// Creates a pending job evaluating `checkpoint` with `settings`, unless one exists (a cancelled one is taken up
    /// again). - Returns: the new (or revived) job.
    func ensureJob(checkpoint: Int64, settings: EvaluationSettings) async throws(StoreError) -> JobRecord?

    /// Takes the next job (`JobOrder`) of an evaluable version (`CheckpointRecord.isEvaluable`), marks it running
    /// for `worker` with a new attempt number and a lease of `leaseSeconds`; `nil` when none is ready. Two claimers
    /// never take the same job.
    func claim(worker: String, leaseSeconds: Double) async throws(StoreError) -> ClaimedJob?

    /// Extends a running job's lease by `seconds` from now. - Returns: the new lease.
    /// - Throws: `StoreError.lostLease` when the job is no longer this lease's.
    func renew(_ lease: Lease, seconds: Double) async throws(StoreError) -> Lease

    /// Returns running jobs to the queue: those whose lease has run out, or every one when `all` (only for an
    /// exclusive store at its start, when no other process can be working). Pending jobs waiting to retry may run
    /// at once after `all` (a restart is a retry). - Returns: how many were running.
    func rescue(all: Bool) async throws(StoreError) -> Int

    /// Cancels the pending and running jobs whose settings hash is not in `configured` (the settings the daemon now
    /// runs with), so a job of an old configuration neither runs nor stays pending for ever: every such job, or with
    /// `roots` only those of versions in run folders under them (a fleet's discoverer speaks for its own folders).
    /// - Returns: how many were cancelled.
    func cancelJobs(notIn configured: Set<String>, under roots: [String]?) async throws(StoreError) -> Int

    /// Puts finished jobs with a length skipped for memory back to `pending` when its estimate fits `limit` now
    /// (`nil`: no limit). - Returns: how many.
    func reopenSkipped(fitting limit: Int?) async throws(StoreError) -> Int
    /// Puts the failed jobs of checkpoint version `checkpoint` back in the queue with their attempts cleared (a user
    /// fixed what made them fail); returns how many. `StoreError.missing` when no such version exists.
    func requeue(checkpoint: Int64) async throws(StoreError) -> Int

    /// Once no job of version `checkpoint` is pending or running: forgets its snapshot and returns the path, for the
    /// caller to delete. `nil` while jobs remain, or when it has none.
    func releaseSnapshot(checkpoint: Int64) async throws(StoreError) -> String?

    /// The stored results among `keys`.
    func results(forKeys keys: [String]) async throws(StoreError) -> [String: ResultRecord]

    /// In one transaction, if `lease` still holds the job: stores `result` (unless a result with its key exists;
    /// only a `skipped` one is replaced), links it to the job, and sets the job's progress to its linked results out
    /// of `planned`. - Throws: `StoreError.lostLease`, and nothing is written.
    func record(_ result: ResultRecord, lease: Lease, planned: Int) async throws(StoreError)

    /// Links results that already exist (the same content reached through another path or settings) to the job.
    /// - Throws: `StoreError.lostLease`, and nothing is written.
    func link(keys: [String], lease: Lease, planned: Int) async throws(StoreError)

    /// Ends a job's turn: `done`, `failed`, `replaced`, `gone`, or `pending` again (after `retrySeconds` when
    /// given). - Throws: `StoreError.lostLease`, and nothing is written.
    func finish(
        _ lease: Lease, state: JobState, error: String?, attempts: Int, retrySeconds: Double?
    ) async throws(StoreError)

    /// Says `worker` is alive (and what it is doing); a worker unheard of for long is no longer listed.
    func heartbeat(_ worker: WorkerInfo) async throws(StoreError)

    /// The workers heard from within the last `withinSeconds`, newest first.
    func workers(withinSeconds: Double) async throws(StoreError) -> [WorkerRecord]

    /// Counts by state and the time of the last change: what the page polls and `/metrics` reports, without decoding
    /// a single job.
    func counts() async throws(StoreError) -> StoreCounts

    /// Runs, versions and jobs, for `status`.
    func status() async throws(StoreError) -> StoreStatus

    /// Every stored result listed under each checkpoint version whose jobs produced or reused it; `run` filters.
    func results(run: String?) async throws(StoreError) -> [ResultRow]
}

/// Which job runs next: for each run, its newest checkpoint first (highest step, then latest discovered), then the
/// next newest, and so on: the first round gives every run its latest point, the rounds after back-fill. A job's
/// rank is its checkpoint's place among all current versions of its run (evaluated or not), so a run whose newest
/// checkpoint is done does not jump the queue with its older ones, and a checkpoint that arrives during the back-fill
/// goes first. Nothing is ever skipped. Ties go to the earliest discovered.
public enum JobOrder {
    /// The job to run next among `ready` (pending jobs whose retry time has passed, each with its checkpoint, which
    /// is current); `current` holds every current version of their runs. Only identifiers and checkpoints are
    /// needed, so a store decodes nothing else to decide.
    public static func next(_ ready: [(job: Int64, checkpoint: CheckpointRecord)], current: [CheckpointRecord])
        -> Int64?
    {
        let byRun = Dictionary(grouping: current, by: \.runFolder)
        func newer(_ a: CheckpointRecord, than b: CheckpointRecord) -> Bool {
            let (sa, sb) = (a.step ?? -1, b.step ?? -1)
            return sa != sb ? sa > sb : a.discovered > b.discovered
        }
        func rank(_ checkpoint: CheckpointRecord) -> Int {
            (byRun[checkpoint.runFolder] ?? []).filter { newer($0, than: checkpoint) }.count
        }
        return ready.min { a, b in
            (rank(a.checkpoint), a.checkpoint.discovered, a.job) < (rank(b.checkpoint), b.checkpoint.discovered, b.job)
        }?.job
    }
}

extension JobOrder {
    /// `JobOrder.next` as one SQL query (SQLite and PostgreSQL alike): the id of the next ready job first. A
    /// version's rank is `RANK() - 1` over its run's evaluable versions by step then discovery, newest first, which
    /// counts the strictly newer ones as `next` does.
    /// - Parameters:
    ///   - evaluable: the SQL condition of `CheckpointRecord.isEvaluable` on `checkpoints`.
    ///   - now: the placeholder or expression of the current time, compared with `not_before`.
    /// Callers add `LIMIT 1` (and PostgreSQL's `FOR UPDATE OF j SKIP LOCKED`).
    public static func nextJobSQL(evaluable: String, now: String = "?") -> String {
        """
        WITH ranked AS (
            SELECT id, discovered, RANK() OVER (
                PARTITION BY run_folder ORDER BY COALESCE(step, -1) DESC, discovered DESC) - 1 AS rank
            FROM checkpoints WHERE \(evaluable))
        SELECT j.id FROM jobs j JOIN ranked c ON c.id = j.checkpoint_id
        WHERE j.state = 'pending' AND (j.not_before IS NULL OR j.not_before <= \(now))
        ORDER BY c.rank, c.discovered, j.id
        """
    }
}

/// Where a store lives when no `--store` is given: `$XDG_STATE_HOME/extrapolate/results.sqlite`, else
/// `~/.local/state/extrapolate/results.sqlite`; `EXTRAPOLATE_STORE` overrides both.
public enum StoreLocation {
    public static func defaultPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let explicit = environment["EXTRAPOLATE_STORE"], !explicit.isEmpty { return explicit }
        return (stateFolder(environment: environment) as NSString).appendingPathComponent("results.sqlite")
    }

    /// `$XDG_STATE_HOME/extrapolate`, else `~/.local/state/extrapolate`: where a process keeps its own files.
    public static func stateFolder(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let state =
            environment["XDG_STATE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((environment["HOME"] ?? NSHomeDirectory()) as NSString).appendingPathComponent(".local/state")
        return (state as NSString).appendingPathComponent("extrapolate")
    }
}
