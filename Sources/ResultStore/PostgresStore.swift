import Evaluation
import Foundation
import Logging
import NIOSSL
import PostgresNIO

/// The store of a fleet: one PostgreSQL database shared by any number of `extrapolate` processes on any number of
/// machines (`serve`, `watch`, `worker`).
///
/// The same semantics as `SQLiteStore`, without its writer lock: a claim is one statement that ranks the ready jobs
/// (`JobOrder.nextJobSQL`) and takes the first with `FOR UPDATE SKIP LOCKED`, so concurrent claimers never take one
/// job; every write about a running job is guarded by its lease; times are the server's `now()`. Registering a
/// version is serialised per path by a transaction-scoped advisory lock, so two discoverers seeing one file
/// register it once. Schema changes are versioned migrations, applied by the first process that finds the schema
/// old, under an advisory lock so two starting processes do not race.
public final class PostgresStore: ResultStore, @unchecked Sendable {
    public let address: PostgresAddress
    /// The connection pool; replaced when it stops answering (`guarded`).
    let pool: ClientPool
    let logger: Logger
    /// Seconds an operation may take before the pool is presumed wedged (a connection lost without an error) and
    /// replaced; the operation fails as `unavailable`, and the caller retries.
    public var operationTimeout: Double = 30

    public var isExclusive: Bool { false }
    public var location: String { address.description }

    /// Connects to the database at `address` and brings its schema up to date (`writing`), or checks that this
    /// version can read it.
    /// - Parameters:
    ///   - connections: most connections this process opens (a worker needs 2: its job and its heartbeat).
    ///   - waitSeconds: how long to keep trying when the server cannot be reached (a fleet starting before its
    ///     database), logging each failed attempt.
    /// - Throws: `StoreError.unavailable` when the server cannot be reached in time; `.cannotOpen` when the schema
    ///   is newer than this version or the credentials are refused.
    public init(
        address: PostgresAddress, writing: Bool = true, connections: Int = 4, waitSeconds: Double = 30,
        logger: Logger = Logger(label: "extrapolate.store")
    ) async throws(StoreError) {
        self.address = address
        self.logger = logger
        var configuration = Self.clientConfiguration(address)
        configuration.options.maximumConnections = max(connections, 1)
        configuration.options.minimumConnections = 0
        configuration.options.connectTimeout = .seconds(5)
        var quiet = logger
        quiet.logLevel = .critical
        pool = ClientPool(configuration: configuration, logger: quiet)
        let client = pool.current
        let deadline = Date().addingTimeInterval(waitSeconds)
        var attempt = 0
        while true {
            attempt += 1
            let failure: StoreError
            do {
                // One plain connection first, bounded in time: it says why a server refuses (no such database, a
                // wrong password, nothing listening) where the pool would only say it gave up.
                let bound = min(max(deadline.timeIntervalSinceNow, 1), 10)
                switch await Deadline.race(seconds: bound, { try await Self.probe(address) }) {
                case .success: break
                case .failure(let error): throw error
                case .timedOut: throw StoreError.unavailable(path: address.description, reason: "no answer")
                }
                try await Self.prepare(client, writing: writing, address: address, logger: logger)
                return
            } catch {
                failure = Self.storeError(error, path: address.description, operation: "connecting")
            }
            guard case .unavailable = failure, Date() < deadline else {
                pool.close()
                throw failure
            }
            logger.warning(
                "cannot reach the store; retrying",
                metadata: ["store": "\(address)", "attempt": "\(attempt)", "error": "\(failure)"])
            // Cancelled: the next attempt's failure ends the loop.
            try? await Task.sleep(for: .milliseconds(min(250 * (1 << min(attempt, 4)), 2000)))
        }
    }

    deinit { pool.close() }

    // MARK: Access

    /// Runs `body` in a transaction; its errors as `StoreError` naming the store and `operation`.
    func transaction<T: Sendable>(
        _ operation: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws(StoreError) -> T {
        let logger = logger
        return try await guarded(operation) { client in
            try await client.withTransaction(logger: logger) { connection in try await body(connection) }
        }
    }

    /// Runs one query outside a transaction.
    func rows(_ operation: String, _ query: PostgresQuery) async throws(StoreError) -> [PostgresRow] {
        let logger = logger
        return try await guarded(operation) { client in try await client.query(query, logger: logger).collect() }
    }

    /// Runs `body` with the pool's client, giving up after `operationTimeout` seconds: a pool that no longer answers
    /// (a connection lost without an error, which a server restart or a network drop can leave behind) is replaced
    /// by a new one, and the operation fails as `unavailable` for the caller to retry.
    private func guarded<T: Sendable>(
        _ operation: String, _ body: @escaping @Sendable (PostgresClient) async throws -> T
    ) async throws(StoreError) -> T {
        let client = pool.current
        let outcome = await Deadline.race(seconds: operationTimeout) { try await body(client) }
        switch outcome {
        case .success(let value): return value
        case .timedOut:
            pool.replace(client)
            logger.warning(
                "no answer from the store; reconnecting",
                metadata: ["store": "\(address)", "operation": "\(operation)", "seconds": "\(operationTimeout)"])
            throw .unavailable(
                path: address.description, reason: "no answer within \(Int(operationTimeout)) s (\(operation))")
        case .failure(let error):
            throw Self.storeError(error, path: address.description, operation: operation)
        }
    }

    // MARK: ResultStore

    public func register(_ s: Sighting) async throws(StoreError) -> (record: CheckpointRecord, isNew: Bool) {
        try await transaction("registering \(s.path)") { [self] db in
            // One registration of a path at a time, whichever process sees it; and the run folder's rank lock
            // (`lockRanks`), taken now in the same round trip since a new version shifts its run's ranks.
            try await db.query(
                """
                SELECT pg_advisory_xact_lock(hashtext(\(s.path)))::TEXT,
                    pg_advisory_xact_lock(hashtext('extrapolate rank ' || \(s.runFolder)))::TEXT
                """, logger: logger)
            // This content at this path, and the path's live versions, in one query.
            let seen = try await db.query(
                """
                SELECT * FROM checkpoints WHERE path = \(s.path)
                AND (content_hash = \(s.contentHash) OR state NOT IN ('replaced', 'gone', 'overwritten'))
                """, logger: logger
            ).collect().map { try Self.checkpoint($0) }
            if var record = seen.first(where: { $0.contentHash == s.contentHash }) {
                if record.state != s.state || record.reason != s.reason {
                    let wasEvaluable = record.isEvaluable
                    if !record.isLive {
                        // The path's live versions are in `seen`; the run folder's rank lock is held.
                        for live in seen where live.id != record.id && live.isLive {
                            try await end(db, checkpoint: live.id, as: .replaced, ranksLocked: true)
                        }
                        try await db.query(
                            """
                            UPDATE jobs SET state = 'pending', updated = clock_timestamp(),
                                rank = \(unescaped: QueueSQL.rank(of: String(record.id)))
                            WHERE checkpoint_id = \(record.id) AND state IN ('gone', 'replaced')
                            """, logger: logger)
                    }
                    let updated = try await db.query(
                        """
                        UPDATE checkpoints SET state = \(s.state.rawValue), reason = \(s.reason),
                            updated = clock_timestamp() WHERE id = \(record.id) RETURNING *
                        """, logger: logger
                    ).collect()
                    if let row = updated.first { record = try Self.checkpoint(row) }
                    try await shift(
                        db, olderThan: record.id, wasEvaluable: wasEvaluable, isEvaluable: record.isEvaluable,
                        locked: true)
                }
                return (record, false)
            }
            for live in seen { try await end(db, checkpoint: live.id, as: .replaced, ranksLocked: true) }
            let inserted = try await db.query(
                """
                INSERT INTO checkpoints(run, run_folder, path, step, scheme, size, modified, content_hash, state,
                    reason, snapshot)
                VALUES (\(s.run), \(s.runFolder), \(s.path), \(s.step.map(Int64.init)), \(s.scheme), \(Int64(s.size)),
                    \(s.modified), \(s.contentHash), \(s.state.rawValue), \(s.reason), \(s.snapshot))
                RETURNING *
                """, logger: logger
            ).collect()
            guard let row = inserted.first else { throw StoreError.missing("the version of \(s.path) just inserted") }
            let record = try Self.checkpoint(row)
            try await shift(
                db, olderThan: record.id, wasEvaluable: false, isEvaluable: record.isEvaluable, locked: true)
            return (record, true)
        }
    }

    /// The first column of every row `query` returns.
    func values<T: PostgresDecodable & Sendable>(
        _ db: PostgresConnection, _ query: PostgresQuery, as type: T.Type
    ) async throws -> [T] {
        let rows = try await db.query(query, logger: logger)
        var found: [T] = []
        for try await value in rows.decode(T.self) { found.append(value) }
        return found
    }

    /// Serialises the statements that set or shift the ranks of one run folder's jobs (`QueueSQL`): two discoverers,
    /// or a discoverer and a requeue, each see the other's versions and jobs once committed, so no rank misses one.
    /// - Returns: whether version `checkpoint` exists (no lock is taken when it does not).
    @discardableResult
    private func lockRanks(_ db: PostgresConnection, of checkpoint: Int64) async throws -> Bool {
        try await !db.query(
            """
            SELECT pg_advisory_xact_lock(hashtext('extrapolate rank ' || run_folder))::TEXT
            FROM checkpoints WHERE id = \(checkpoint)
            """, logger: logger
        ).collect().isEmpty
    }

    /// Shifts the ranks of the unfinished jobs of versions older than `checkpoint` in its run folder when it became
    /// evaluable or stopped being so.
    private func shift(
        _ db: PostgresConnection, olderThan checkpoint: Int64, wasEvaluable: Bool, isEvaluable: Bool,
        locked: Bool = false
    ) async throws {
        guard wasEvaluable != isEvaluable else { return }
        if !locked { try await lockRanks(db, of: checkpoint) }
        try await db.query(
            PostgresQuery(
                unsafeSQL: QueueSQL.shift(olderThan: String(checkpoint), by: isEvaluable ? 1 : -1)),
            logger: logger)
    }

    /// Ends version `checkpoint` as `state` with its unfinished jobs; drops one that was never complete.
    /// `ranksLocked`: the caller holds the run folder's rank lock already.
    private func end(
        _ db: PostgresConnection, checkpoint: Int64, as state: CheckpointState, ranksLocked: Bool = false
    ) async throws {
        let deleted = try await db.query(
            """
            DELETE FROM checkpoints WHERE id = \(checkpoint)
            AND state IN ('incomplete', 'invalid', 'unreadable')
            AND NOT EXISTS (SELECT 1 FROM jobs WHERE checkpoint_id = checkpoints.id) RETURNING id
            """, logger: logger
        ).collect()
        if !deleted.isEmpty { return }
        guard
            let row = try await db.query(
                "SELECT * FROM checkpoints WHERE id = \(checkpoint) FOR UPDATE", logger: logger
            ).collect().first
        else { return }
        let before = try Self.checkpoint(row)
        try await db.query(
            "UPDATE checkpoints SET state = \(state.rawValue), updated = clock_timestamp() WHERE id = \(checkpoint)",
            logger: logger)
        var after = before
        after.state = state
        try await shift(
            db, olderThan: checkpoint, wasEvaluable: before.isEvaluable, isEvaluable: after.isEvaluable,
            locked: ranksLocked)
        // A version kept in a snapshot stays evaluable when its path is rewritten.
        if after.isEvaluable { return }
        let jobState = state == .gone ? JobState.gone : .replaced
        try await db.query(
            """
            UPDATE jobs SET state = \(jobState.rawValue), lease_until = NULL, updated = clock_timestamp()
            WHERE checkpoint_id = \(checkpoint) AND state IN ('pending', 'running')
            """, logger: logger)
    }

    public func liveVersion(path: String) async throws(StoreError) -> CheckpointRecord? {
        try await rows(
            "reading \(path)",
            """
            SELECT * FROM checkpoints WHERE path = \(path) AND state NOT IN ('replaced', 'gone', 'overwritten')
            ORDER BY id DESC LIMIT 1
            """
        ).first.map { row throws(StoreError) in try Self.decoded { try Self.checkpoint(row) } }
    }

    public func markGone(under root: String, present: Set<String>) async throws(StoreError) -> [CheckpointRecord] {
        let prefix = root.hasSuffix("/") ? root : root + "/"
        return try await transaction("marking checkpoints under \(root) gone") { [self] db in
            let live = try await db.query(
                """
                SELECT * FROM checkpoints WHERE state NOT IN ('replaced', 'gone', 'overwritten')
                AND (run_folder = \(root) OR starts_with(run_folder, \(prefix))) FOR UPDATE
                """, logger: logger
            ).collect()
            var marked: [CheckpointRecord] = []
            for row in live {
                var record = try Self.checkpoint(row)
                guard !present.contains(record.path) else { continue }
                try await end(db, checkpoint: record.id, as: .gone)
                (record.state, record.updated) = (.gone, Date())
                marked.append(record)
            }
            return marked
        }
    }

    public func ensureJob(checkpoint: Int64, settings: EvaluationSettings) async throws(StoreError) -> JobRecord? {
        let json = try Self.encode(settings)
        let hash = settings.contentHash
        return try await transaction("queueing a job") { [self] db in
            guard try await lockRanks(db, of: checkpoint) else { throw StoreError.missing("checkpoint \(checkpoint)") }
            // Inserted, or a job cancelled under another configuration taken up again (its results stay linked).
            let rows = try await db.query(
                """
                INSERT INTO jobs(checkpoint_id, settings, settings_hash, state, rank, stage)
                VALUES (\(checkpoint), \(json), \(hash), 'pending', \(unescaped: QueueSQL.rank(of: String(checkpoint))),
                    \(settings.task.queueStage))
                ON CONFLICT (checkpoint_id, settings_hash) DO UPDATE
                SET state = 'pending', attempts = 0, error = NULL, updated = clock_timestamp(), rank = excluded.rank
                WHERE jobs.state = 'cancelled'
                RETURNING *
                """, logger: logger
            ).collect()
            return try rows.first.map(Self.job)
        }
    }

    public func claim(worker: String, leaseSeconds: Double) async throws(StoreError) -> ClaimedJob? {
        let next = QueueSQL.next(now: "now()")
        var bindings = PostgresBindings()
        bindings.append(worker)
        bindings.append(leaseSeconds)
        let binds = bindings
        // One statement (atomic on its own): the claim and the version it evaluates in a single round trip.
        let sql = """
            WITH next AS (\(next) LIMIT 1 FOR UPDATE OF j SKIP LOCKED),
            claimed AS (
                UPDATE jobs SET state = 'running', worker = $1, attempt = jobs.attempt + 1,
                    lease_until = now() + make_interval(secs => $2), updated = clock_timestamp()
                FROM next WHERE jobs.id = next.id
                RETURNING jobs.*)
            SELECT claimed.*, \(Self.checkpointColumns("c", prefix: "c_"))
            FROM claimed JOIN checkpoints c ON c.id = claimed.checkpoint_id
            """
        let rows = try await rows("claiming a job", PostgresQuery(unsafeSQL: sql, binds: binds))
        guard let row = rows.first else { return nil }
        return try Self.decoded {
            ClaimedJob(job: try Self.job(row), checkpoint: try Self.checkpoint(row, prefix: "c_"))
        }
    }

    public func renew(_ lease: Lease, seconds: Double) async throws(StoreError) -> Lease {
        let rows = try await rows(
            "renewing the lease of job \(lease.job)",
            """
            UPDATE jobs SET lease_until = now() + make_interval(secs => \(seconds)), updated = clock_timestamp()
            WHERE id = \(lease.job) AND state = 'running' AND worker = \(lease.worker) AND attempt = \(lease.attempt)
            RETURNING lease_until
            """)
        guard let row = rows.first else { throw .lostLease(lease) }
        let until: Date
        do { until = try row.decode(Date.self) } catch {
            throw .corrupt(path: address.description, what: "the lease of job \(lease.job) reads back as \(error)")
        }
        var renewed = lease
        renewed.until = until
        return renewed
    }

    public func rescue(all: Bool) async throws(StoreError) -> Int {
        try await transaction("returning expired leases to the queue") { [self] db in
            let rescued = try await db.query(
                """
                UPDATE jobs SET state = 'pending', lease_until = NULL, updated = clock_timestamp()
                WHERE state = 'running' AND (\(all) OR lease_until < now()) RETURNING id
                """, logger: logger
            ).collect().count
            if all { try await db.query("UPDATE jobs SET not_before = NULL WHERE state = 'pending'", logger: logger) }
            return rescued
        }
    }

    public func cancelJobs(notIn configured: Set<String>, under roots: [String]?) async throws(StoreError) -> Int {
        let everywhere = roots == nil
        let folders = roots ?? []
        let prefixes = folders.map { $0.hasSuffix("/") ? $0 : $0 + "/" }
        return try await rows(
            "cancelling jobs of settings no longer configured",
            """
            UPDATE jobs SET state = 'cancelled', lease_until = NULL, updated = clock_timestamp()
            WHERE state IN ('pending', 'running') AND NOT (settings_hash = ANY(\(configured.sorted())))
            AND (\(everywhere) OR checkpoint_id IN (SELECT c.id FROM checkpoints c
                WHERE c.run_folder = ANY(\(folders)) OR EXISTS (
                    SELECT 1 FROM unnest(\(prefixes)::TEXT[]) p WHERE starts_with(c.run_folder, p))))
            RETURNING id
            """
        ).count
    }

    public func reopenSkipped(fitting limit: Int?) async throws(StoreError) -> Int {
        // A number, written into the statement (it appears twice).
        let fits = limit.map { "r.memory_estimate <= \(Int64($0))" } ?? "TRUE"
        return try await transaction("reopening jobs with skipped lengths") { [self] db in
            let reopened = """
                SELECT l.job_id FROM job_results l JOIN results r ON r.key = l.result_key
                WHERE r.outcome = 'skipped' AND r.memory_estimate IS NOT NULL AND \(fits)
                """
            // The rank locks of every folder concerned, in one order (two callers never wait on each other).
            try await db.query(
                """
                SELECT pg_advisory_xact_lock(hashtext('extrapolate rank ' || folder)) FROM (
                    SELECT DISTINCT c.run_folder AS folder FROM jobs j JOIN checkpoints c ON c.id = j.checkpoint_id
                    WHERE j.state = 'done' AND j.id IN (\(unescaped: reopened)) ORDER BY 1) f
                """, logger: logger)
            return try await db.query(
                """
                UPDATE jobs SET state = 'pending', updated = clock_timestamp(),
                    rank = \(unescaped: QueueSQL.rank(of: "jobs.checkpoint_id"))
                WHERE state = 'done' AND id IN (\(unescaped: reopened))
                RETURNING id
                """, logger: logger
            ).collect().count
        }
    }

    public func requeue(checkpoint: Int64) async throws(StoreError) -> Int {
        try await transaction("requeueing checkpoint \(checkpoint)") { [self] db in
            guard try await lockRanks(db, of: checkpoint) else { throw StoreError.missing("checkpoint \(checkpoint)") }
            return try await db.query(
                """
                UPDATE jobs SET state = 'pending', attempts = 0, not_before = NULL, error = NULL,
                    updated = clock_timestamp(), rank = \(unescaped: QueueSQL.rank(of: "jobs.checkpoint_id"))
                WHERE checkpoint_id = \(checkpoint) AND state = 'failed' RETURNING id
                """, logger: logger
            ).collect().count
        }
    }

    public func releaseSnapshot(checkpoint: Int64) async throws(StoreError) -> String? {
        try await transaction("releasing the snapshot of checkpoint \(checkpoint)") { [self] db -> String? in
            let unfinished = try await db.query(
                "SELECT 1 FROM jobs WHERE checkpoint_id = \(checkpoint) AND state IN ('pending', 'running') LIMIT 1",
                logger: logger
            ).collect()
            guard unfinished.isEmpty else { return nil }
            guard
                let row = try await db.query(
                    "SELECT * FROM checkpoints WHERE id = \(checkpoint) FOR UPDATE", logger: logger
                ).collect().first
            else { return nil }
            let before = try Self.checkpoint(row)
            guard let path = before.snapshot else { return nil }
            try await db.query("UPDATE checkpoints SET snapshot = NULL WHERE id = \(checkpoint)", logger: logger)
            var after = before
            after.snapshot = nil
            try await shift(
                db, olderThan: checkpoint, wasEvaluable: before.isEvaluable, isEvaluable: after.isEvaluable)
            return path
        }
    }

    public func results(forKeys keys: [String]) async throws(StoreError) -> [String: ResultRecord] {
        guard !keys.isEmpty else { return [:] }
        let found = try await rows("reading results", "SELECT * FROM results WHERE key = ANY(\(keys))")
        return try Self.decoded {
            Dictionary(
                uniqueKeysWithValues: try found.map { row in
                    let result = try Self.result(row)
                    return (result.key, result)
                })
        }
    }

    /// Throws `lostLease` unless `lease` still holds its job, locking the job's row until the transaction ends.
    private func checkHeld(_ db: PostgresConnection, _ lease: Lease) async throws {
        let held = try await db.query(
            """
            SELECT 1 FROM jobs WHERE id = \(lease.job) AND state = 'running' AND worker = \(lease.worker)
            AND attempt = \(lease.attempt) FOR UPDATE
            """, logger: logger
        ).collect()
        if held.isEmpty { throw StoreError.lostLease(lease) }
    }

    public func record(_ r: ResultRecord, lease: Lease, planned: Int) async throws(StoreError) {
        let point = try Self.encode(r.point)
        // One statement, in one round trip: the lease's job row locked, the result stored (unless stored already;
        // only a skipped one is replaced), linked, and the job's progress set; nothing when the lease is lost.
        // The link's foreign key is checked at the statement's end, when the result is there.
        let recorded = try await rows(
            "recording a result of job \(lease.job)",
            """
            WITH held AS (
                SELECT id FROM jobs WHERE id = \(lease.job) AND state = 'running' AND worker = \(lease.worker)
                AND attempt = \(lease.attempt) FOR UPDATE),
            stored AS (
                INSERT INTO results(\(unescaped: ResultSQL.columns))
                SELECT \(r.key), \(r.contentHash), \(r.architectureHash), \(r.scoringHash), \(r.engineVersion),
                    \(r.series), \(Int32(r.length)), \(r.outcome.rawValue),
                    \(r.protocolName), \(r.point.perplexity),
                    \(r.point.meanNLL), \(r.point.tokens.map(Int64.init)), \(r.point.interval?.lower),
                    \(r.point.interval?.upper), \(r.reason), \(r.memoryEstimate.map(Int64.init)),
                    \(r.point.result?.seconds), \(r.started), \(r.finished), \(point)
                FROM held
                \(unescaped: ResultSQL.replacingSkipped)
                RETURNING key),
            linked AS (
                INSERT INTO job_results(job_id, result_key) SELECT id, \(r.key) FROM held
                ON CONFLICT DO NOTHING RETURNING 1)
            UPDATE jobs SET done = (SELECT count(*) FROM job_results WHERE job_id = \(lease.job))
                    + (SELECT count(*) FROM linked),
                planned = \(Int32(planned)), updated = clock_timestamp()
            FROM held WHERE jobs.id = held.id
            RETURNING jobs.id
            """)
        if recorded.isEmpty { throw .lostLease(lease) }
    }

    public func link(keys: [String], lease: Lease, planned: Int) async throws(StoreError) {
        try await transaction("linking results to job \(lease.job)") { [self] db in
            try await checkHeld(db, lease)
            try await link(db, keys: keys, job: lease.job, planned: planned)
        }
    }

    private func link(_ db: PostgresConnection, keys: [String], job: Int64, planned: Int) async throws {
        if !keys.isEmpty {
            try await db.query(
                """
                INSERT INTO job_results(job_id, result_key) SELECT \(job), key FROM results WHERE key = ANY(\(keys))
                ON CONFLICT DO NOTHING
                """, logger: logger)
        }
        try await db.query(
            """
            UPDATE jobs SET done = (SELECT count(*) FROM job_results WHERE job_id = \(job)),
                planned = \(Int32(planned)), updated = clock_timestamp()
            WHERE id = \(job)
            """, logger: logger)
    }

    public func finish(
        _ lease: Lease, state: JobState, error: String?, attempts: Int, retrySeconds: Double?
    ) async throws(StoreError) {
        let finished = try await rows(
            "finishing job \(lease.job)",
            """
            UPDATE jobs SET state = \(state.rawValue), error = \(error), attempts = \(Int32(attempts)),
                not_before = now() + make_interval(secs => \(retrySeconds)), lease_until = NULL,
                updated = clock_timestamp()
            WHERE id = \(lease.job) AND state = 'running' AND worker = \(lease.worker) AND attempt = \(lease.attempt)
            RETURNING id
            """)
        if finished.isEmpty { throw .lostLease(lease) }
    }

    public func heartbeat(_ worker: WorkerInfo) async throws(StoreError) {
        _ = try await rows(
            "recording worker \(worker.id)",
            """
            INSERT INTO workers(id, host, pid, roles, job) VALUES (\(worker.id), \(worker.host), \(worker.pid),
                \(worker.roles.joined(separator: ",")), \(worker.job))
            ON CONFLICT (id) DO UPDATE SET job = excluded.job, roles = excluded.roles, heartbeat = clock_timestamp()
            """)
    }

    public func workers(withinSeconds: Double) async throws(StoreError) -> [WorkerRecord] {
        let found = try await rows(
            "reading workers",
            """
            SELECT * FROM workers WHERE heartbeat >= now() - make_interval(secs => \(withinSeconds))
            ORDER BY heartbeat DESC
            """)
        return try Self.decoded {
            try found.map { row in
                let r = row.makeRandomAccess()
                return WorkerRecord(
                    info: WorkerInfo(
                        id: try r["id"].decode(String.self), host: try r["host"].decode(String.self),
                        pid: try r["pid"].decode(Int32.self),
                        roles: try r["roles"].decode(String.self).split(separator: ",").map(String.init),
                        job: try r["job"].decode(Int64?.self)),
                    started: try r["started"].decode(Date.self), heartbeat: try r["heartbeat"].decode(Date.self))
            }
        }
    }
}
