import Evaluation
import Foundation

/// Where the daemon keeps runs, checkpoint versions, jobs and results.
///
/// One process writes a store (the daemon); readers (`status`, `results`) open it read-only. Every method is one
/// transaction: a result, its link to the job and the job's progress are written together or not at all, so a
/// kill loses at most the result being computed and never records one twice. `SQLiteStore` is the default;
/// `MemoryStore` has the same behaviour for tests; a PostgreSQL store for a fleet of workers joins here.
public protocol ResultStore: AnyObject, Sendable {
    /// Records a sighting of a checkpoint: a new (path, content) becomes a new version, and earlier versions of the
    /// same path become `replaced` (their unfinished jobs too, unless the version has a snapshot to be evaluated
    /// from); an earlier version that was never complete
    /// (`CheckpointState.neverComplete`) is dropped instead. An existing version takes the sighting's state.
    /// - Returns: the version, and whether it is new.
    func register(_ sighting: Sighting, at now: Date) throws(StoreError) -> (record: CheckpointRecord, isNew: Bool)

    /// The version at `path` now (not replaced, not gone), if any: a restart reuses its content hash when the
    /// files' sizes and times are unchanged, instead of reading every checkpoint again.
    func liveVersion(path: String) throws(StoreError) -> CheckpointRecord?

    /// Marks every live version in run folders under `root` whose path is not in `present` as `gone`, with their
    /// unfinished jobs (a version that was never complete is dropped instead). - Returns: the versions marked.
    func markGone(under root: String, present: Set<String>, at now: Date) throws(StoreError) -> [CheckpointRecord]

    /// Creates a pending job evaluating `checkpoint` with `settings`, unless one exists. - Returns: the new job.
    func ensureJob(checkpoint: Int64, settings: EvaluationSettings, at now: Date) throws(StoreError) -> JobRecord?

    /// Takes the next job (`JobOrder`) of an evaluable version (`CheckpointRecord.isEvaluable`) and marks it
    /// running; `nil` when none is ready.
    func claim(at now: Date) throws(StoreError) -> ClaimedJob?

    /// At a start: puts jobs left `running` by a process that died back to `pending`, and lets pending jobs waiting
    /// to retry run at once (a restart is a retry). - Returns: how many were running.
    func requeueRunning(at now: Date) throws(StoreError) -> Int

    /// At a start: cancels the pending and running jobs whose settings hash is not in `configured` (the settings the
    /// daemon now runs with), so a job of an old configuration neither runs nor stays pending for ever.
    /// - Returns: how many were cancelled.
    func cancelJobs(notIn configured: Set<String>, at now: Date) throws(StoreError) -> Int

    /// Puts finished jobs with a length skipped for memory back to `pending` when its estimate fits `limit` now
    /// (`nil`: no limit). - Returns: how many.
    func reopenSkipped(fitting limit: Int?, at now: Date) throws(StoreError) -> Int
    /// Puts the failed jobs of checkpoint version `checkpoint` back in the queue with their attempts cleared (a user
    /// fixed what made them fail); returns how many. `StoreError.missing` when no such version exists.
    func requeue(checkpoint: Int64, at now: Date) throws(StoreError) -> Int

    /// Once no job of version `checkpoint` is pending or running: forgets its snapshot and returns the path, for the
    /// caller to delete. `nil` while jobs remain, or when it has none.
    func releaseSnapshot(checkpoint: Int64) throws(StoreError) -> String?

    /// The stored results among `keys`.
    func results(forKeys keys: [String]) throws(StoreError) -> [String: ResultRecord]

    /// In one transaction: stores `result` (unless a result with its key exists; only a `skipped` one is replaced),
    /// links it to the job, and sets the job's progress to its linked results out of `planned`.
    func record(_ result: ResultRecord, job: Int64, planned: Int, at now: Date) throws(StoreError)

    /// Links results that already exist (the same content reached through another path or settings) to the job.
    func link(keys: [String], job: Int64, planned: Int, at now: Date) throws(StoreError)

    /// Ends a job's turn: `done`, `failed`, `replaced`, `gone`, or `pending` again with a retry time.
    func finish(
        job: Int64, state: JobState, error: String?, attempts: Int, notBefore: Date?, at now: Date
    ) throws(StoreError)

    /// Runs, versions and jobs, for `status`.
    func status() throws(StoreError) -> StoreStatus

    /// Every stored result listed under each checkpoint version whose jobs produced or reused it; `run` filters.
    func results(run: String?) throws(StoreError) -> [ResultRow]
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

/// Where a store lives when no `--store` is given: `$XDG_STATE_HOME/extrapolate/results.sqlite`, else
/// `~/.local/state/extrapolate/results.sqlite`; `EXTRAPOLATE_STORE` overrides both.
public enum StoreLocation {
    public static func defaultPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let explicit = environment["EXTRAPOLATE_STORE"], !explicit.isEmpty { return explicit }
        let state =
            environment["XDG_STATE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((environment["HOME"] ?? NSHomeDirectory()) as NSString).appendingPathComponent(".local/state")
        return ((state as NSString).appendingPathComponent("extrapolate") as NSString).appendingPathComponent(
            "results.sqlite")
    }
}
