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

    /// Runs, versions and jobs, for `status`: all of them, or those of run `run`.
    func status(run: String?) async throws(StoreError) -> StoreStatus

    /// Every stored result listed under each checkpoint version whose jobs produced or reused it; `run` and
    /// `checkpoint` (a version's id) filter.
    func results(run: String?, checkpoint: Int64?) async throws(StoreError) -> [ResultRow]

    /// The versions that need a look, with their jobs: not yet evaluated (pending, running, failed) or not
    /// evaluable for a reason to read (incomplete, invalid, unreadable, overwritten). What `status` lists.
    func unsettled() async throws(StoreError) -> StoreStatus

    /// Each run's versions and jobs counted by state, its newest step and results, and when it last changed: what
    /// the page's overview and `status` show, in two grouped queries that decode no job. `named`: that run's only.
    func runs(named: String?) async throws(StoreError) -> [RunSummary]
}

extension ResultStore {
    /// Every run's versions and jobs.
    public func status() async throws(StoreError) -> StoreStatus { try await status(run: nil) }

    /// Every run at a glance.
    public func runs() async throws(StoreError) -> [RunSummary] { try await runs(named: nil) }

    /// Every stored result (of `run`, when given).
    public func results(run: String?) async throws(StoreError) -> [ResultRow] {
        try await results(run: run, checkpoint: nil)
    }
}

/// Which job runs next: every perplexity job before any passkey job (`EvaluationTask.queueStage`: perplexity is
/// quick and is what most pages show; passkey retrieval takes many passes per length), and within a task, for each
/// run, its newest checkpoint first (highest step, then latest discovered), then the
/// next newest, and so on: the first round gives every run its latest point, the rounds after back-fill. A job's
/// rank is its checkpoint's place among all evaluable versions of its run folder (evaluated or not): the number of
/// them strictly newer. So a run whose newest checkpoint is done does not jump the queue with its older ones, and a
/// checkpoint that arrives during the back-fill goes first. Nothing is ever skipped. Ties go to the earliest
/// registered version, then the earliest queued job.
public enum JobOrder {
    /// The job to run next among `ready` (pending jobs whose retry time has passed, each with its checkpoint, which
    /// is evaluable); `current` holds every evaluable version of their runs. The reference the stores' stored ranks
    /// are tested against; O(n log n).
    public static func next(
        _ ready: [(job: Int64, checkpoint: CheckpointRecord, stage: Int)], current: [CheckpointRecord]
    ) -> Int64? {
        let ranks = self.ranks(current)
        return ready.min { a, b in
            (a.stage, ranks[a.checkpoint.id] ?? 0, a.checkpoint.id, a.job) < (
                b.stage, ranks[b.checkpoint.id] ?? 0, b.checkpoint.id, b.job
            )
        }?.job
    }

    /// Each version's rank among `versions` (by checkpoint id): how many versions of its run folder are strictly
    /// newer (higher step, or the same step discovered later).
    public static func ranks(_ versions: [CheckpointRecord]) -> [Int64: Int] {
        var ranks: [Int64: Int] = [:]
        for (_, run) in Dictionary(grouping: versions, by: \.runFolder) {
            let newestFirst = run.sorted { a, b in
                let (sa, sb) = (a.step ?? -1, b.step ?? -1)
                return sa != sb ? sa > sb : a.discovered > b.discovered
            }
            var rank = 0
            for (index, version) in newestFirst.enumerated() {
                // Versions tied with the one before them share its rank (none is strictly newer than the other).
                if index > 0 {
                    let previous = newestFirst[index - 1]
                    if (previous.step ?? -1, previous.discovered) != (version.step ?? -1, version.discovered) {
                        rank = index
                    }
                }
                ranks[version.id] = rank
            }
        }
        return ranks
    }
}

/// The queue's order kept in the database (SQLite and PostgreSQL alike), so a claim reads the first row of an index
/// instead of ranking every version: `jobs.rank` holds, for every pending or running job, its checkpoint's rank
/// (`JobOrder`). It is set when a job becomes pending from another state, and shifted by one for the unfinished
/// jobs of a run's older versions when a version of that run becomes evaluable or stops being so. A version that
/// arrives newest (a trainer's next save) shifts only the run's unfinished older jobs, usually none.
enum QueueSQL {
    /// `CheckpointRecord.isEvaluable` on the checkpoints row `alias`.
    static func evaluable(_ alias: String) -> String {
        "(\(alias).state = 'current' OR (\(alias).state = 'replaced' AND \(alias).snapshot IS NOT NULL))"
    }

    /// Version `a` is strictly newer than version `b`, as a row-value comparison an index on
    /// `(run_folder, COALESCE(step, -1), discovered)` answers.
    static func newer(_ a: String, than b: String) -> String {
        "(COALESCE(\(a).step, -1), \(a).discovered) > (COALESCE(\(b).step, -1), \(b).discovered)"
    }

    /// The rank of the checkpoint whose id is the SQL expression `checkpoint`, as a scalar subquery.
    static func rank(of checkpoint: String) -> String {
        """
        (SELECT count(*) FROM checkpoints c JOIN checkpoints o ON o.run_folder = c.run_folder
            AND \(evaluable("o")) AND \(newer("o", than: "c")) WHERE c.id = \(checkpoint))
        """
    }

    /// Adds `delta` to the rank of the unfinished jobs of the versions older than checkpoint `checkpoint` in its run
    /// folder: what a version becoming evaluable (`+ 1`) or ceasing to be (`- 1`) does to them.
    static func shift(olderThan checkpoint: String, by delta: Int) -> String {
        """
        UPDATE jobs SET rank = rank + \(delta) WHERE id IN (
            SELECT j.id FROM checkpoints c JOIN checkpoints o ON o.run_folder = c.run_folder
            AND \(evaluable("o")) AND \(newer("c", than: "o"))
            JOIN jobs j ON j.checkpoint_id = o.id AND j.state IN ('pending', 'running')
            WHERE c.id = \(checkpoint))
        """
    }

    /// Sets the rank of every unfinished job (a migration, or after deleting versions).
    static let rerankAll =
        "UPDATE jobs SET rank = \(rank(of: "jobs.checkpoint_id")) WHERE state IN ('pending', 'running')"

    /// The next ready job's id: the first pending row of the `jobs_queue` index (rank, checkpoint, id) whose retry
    /// time has passed, of an evaluable version (always so for a pending job; checked all the same).
    /// - Parameter now: the placeholder or expression of the current time, compared with `not_before`.
    /// Callers add `LIMIT 1` (and PostgreSQL's `FOR UPDATE OF j SKIP LOCKED`). The version's check is an `EXISTS`, not
    /// a join: on tables without statistics yet (a new fleet's first minute) PostgreSQL planned the join from the
    /// versions side and sorted every pending job (110,982 rows read for 2,000 jobs); the `EXISTS` keeps it on
    /// `jobs_queue`.
    /// - Parameter indexedBy: SQLite's `INDEXED BY jobs_queue`: without statistics its planner prefers the index on
    ///   the state and sorts every pending job.
    static func next(now: String, indexedBy: Bool = false) -> String {
        """
        SELECT j.id FROM jobs j \(indexedBy ? "INDEXED BY jobs_queue " : "")
        WHERE j.state = 'pending' AND (j.not_before IS NULL OR j.not_before <= \(now))
        AND EXISTS (SELECT 1 FROM checkpoints k WHERE k.id = j.checkpoint_id AND \(evaluable("k")))
        ORDER BY j.stage, j.rank, j.checkpoint_id, j.id
        """
    }

    /// The indexes the queue's statements needed before passkey jobs (both stores' earlier migrations make them).
    static let indexes = [
        "CREATE INDEX jobs_queue ON jobs(rank, checkpoint_id, id) WHERE state = 'pending'",
        "CREATE INDEX checkpoints_order ON checkpoints(run_folder, (COALESCE(step, -1)), discovered)",
    ]

    /// The migration that puts each job's task before its rank (`EvaluationTask.queueStage`; a job's stage never
    /// changes, since its settings are its identity).
    static let stages = [
        "ALTER TABLE jobs ADD COLUMN stage INTEGER NOT NULL DEFAULT 0",
        "DROP INDEX jobs_queue",
        "CREATE INDEX jobs_queue ON jobs(stage, rank, checkpoint_id, id) WHERE state = 'pending'",
    ]
}

extension EvaluationTask {
    /// The task's place in the queue: perplexity 0, passkey 1 (`JobOrder`).
    public var queueStage: Int {
        switch self {
        case .perplexity: 0
        case .passkey: 1
        }
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
