import Evaluation
import Foundation
import GRDB

/// The default store: one SQLite file in WAL mode, written by one daemon and read by any number of `status` and
/// `results` processes opened read-only.
///
/// Debian 12's SQLite 3.40 predates the fix of a WAL-reset corruption that needs two connections writing at once,
/// so a writer takes an exclusive lock on `PATH.lock` (held by the kernel until the process ends, even by `kill -9`)
/// and a second daemon is refused. Schema changes are named migrations.
public final class SQLiteStore: ResultStore, @unchecked Sendable {
    public let path: String
    /// A pool (WAL) for the writer and readers beside it; a queue over an immutable file for a reader that cannot
    /// write the store's folder.
    let pool: any DatabaseWriter
    /// The lock file's descriptor, held open for the writer's lifetime.
    let lockDescriptor: Int32?
    /// The store's clock: this machine's, the only one writing the store (tests move it).
    let clock: @Sendable () -> Date

    /// The writer's lock makes it the only process working on the store.
    public var isExclusive: Bool { true }
    public var location: String { path }

    /// Opens (creating it and its folder if needed) the store at `path` for writing, and takes the writer lock.
    /// - Parameter maximumPages: caps the file at this many pages (SQLite then reports "database or disk is full"):
    ///   how tests simulate a full disk.
    /// - Throws: `StoreError.locked` when another process writes it; `.cannotOpen` otherwise.
    public init(
        writingTo path: String, maximumPages: Int? = nil, clock: @escaping @Sendable () -> Date = Date.init
    ) throws(StoreError) {
        self.path = path
        self.clock = clock
        try Self.refuseFolder(path)
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty {
            do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
                throw .cannotOpen(path: path, reason: "cannot create \(folder): \(error.localizedDescription)")
            }
        }
        let descriptor = try Self.lock(path + ".lock", store: path)
        lockDescriptor = descriptor
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            if let maximumPages { try db.execute(sql: "PRAGMA max_page_count = \(maximumPages)") }
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(pool)
        } catch {
            close(descriptor)
            throw .cannotOpen(path: path, reason: Self.reason(error))
        }
    }

    /// A folder given as the store (SQLite itself says only "disk I/O error").
    private static func refuseFolder(_ path: String) throws(StoreError) {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue else { return }
        let example = (path as NSString).appendingPathComponent("results.sqlite")
        throw .cannotOpen(path: path, reason: "it is a folder; give the store's file, for example \(example)")
    }

    /// Opens an existing store read-only (`status`, `results`), while a daemon may be writing it.
    /// - Throws: `StoreError.cannotOpen` when there is no store at `path` or it is not one.
    public init(readingFrom path: String) throws(StoreError) {
        self.path = path
        clock = Date.init
        lockDescriptor = nil
        guard FileManager.default.fileExists(atPath: path) else {
            throw .cannotOpen(
                path: path, reason: "no store here yet; `extrapolate watch` creates it (or pass --store PATH)")
        }
        try Self.refuseFolder(path)
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(10)
        do {
            let file = try Self.openForReading(path, configuration: configuration)
            let (applied, tables) = try file.read { db in
                (
                    try Self.migrator.appliedIdentifiers(db),
                    try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master WHERE type = 'table'") ?? 0
                )
            }
            if applied.isEmpty && tables == 0 {
                // A store its daemon has created but not yet written its first transaction to (or a copy of one
                // taken then, as power loss leaves it): it holds nothing yet, and reads as the empty store.
                let empty = try DatabaseQueue()
                try Self.migrator.migrate(empty)
                pool = empty
                return
            }
            pool = file
            let known = Set(Self.migrator.migrations)
            if let unknown = applied.subtracting(known).sorted().first {
                throw StoreError.cannotOpen(
                    path: path, reason: "written by a newer Extrapolate (migration '\(unknown)'); upgrade to read it")
            }
            if let missing = Self.migrator.migrations.first(where: { !applied.contains($0) }) {
                throw StoreError.cannotOpen(
                    path: path,
                    reason: "written by an older Extrapolate (it lacks migration '\(missing)'); start a daemon of this "
                        + "version on it once to upgrade it (its migrations keep every result)")
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw .cannotOpen(path: path, reason: Self.reason(error))
        }
    }

    deinit {
        if let lockDescriptor { close(lockDescriptor) }
    }

    /// A reader of `path`. Reading a WAL database needs its `-shm` file, which SQLite creates beside it; a user who
    /// cannot write that folder (a stopped daemon's store owned by another account) reads the file as immutable
    /// instead, which needs no side file: no daemon writes it then, or the `-shm` file would exist.
    private static func openForReading(_ path: String, configuration: Configuration) throws -> any DatabaseWriter {
        let folder = (path as NSString).deletingLastPathComponent
        let sideFileExists = FileManager.default.fileExists(atPath: path + "-shm")
        if sideFileExists || FileManager.default.isWritableFile(atPath: folder.isEmpty ? "." : folder) {
            return try DatabasePool(path: path, configuration: configuration)
        }
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        let encoded = absolute.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? absolute
        return try DatabaseQueue(path: "file:\(encoded)?immutable=1", configuration: configuration)
    }

    private static func lock(_ lockPath: String, store: String) throws(StoreError) -> Int32 {
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw .cannotOpen(path: store, reason: "cannot create \(lockPath): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            // Who holds the lock, for the message only: an unreadable lock file says "unknown process".
            let holder = (try? String(contentsOfFile: lockPath, encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            close(descriptor)
            throw .locked(path: store, holder: holder.map { $0.isEmpty ? "unknown process" : $0 } ?? "unknown process")
        }
        let holder = "pid \(getpid()) on \(ProcessInfo.processInfo.hostName)\n"
        _ = ftruncate(descriptor, 0)
        _ = holder.withCString { pwrite(descriptor, $0, strlen($0), 0) }
        return descriptor
    }

    // MARK: ResultStore

    public func register(_ s: Sighting) async throws(StoreError) -> (record: CheckpointRecord, isNew: Bool) {
        let now = clock()
        return try await write("registering \(s.path)") { db in
            if let row = try Row.fetchOne(
                db, sql: "SELECT * FROM checkpoints WHERE path = ? AND content_hash = ?",
                arguments: [s.path, s.contentHash])
            {
                var record = try Self.checkpoint(row)
                if record.state != s.state || record.reason != s.reason {
                    let wasEvaluable = record.isEvaluable
                    if !record.isLive {
                        // Back at its path (remounted, or rewritten to the same bytes): the live version again, and
                        // what it had left to do resumes.
                        try Self.replaceLive(db, path: s.path, except: record.id, at: now)
                        try db.execute(
                            sql: """
                                UPDATE jobs SET state = 'pending', updated = ?, rank = \(QueueSQL.rank(of: "?"))
                                WHERE checkpoint_id = ? AND state IN ('gone', 'replaced')
                                """, arguments: [now.timeIntervalSince1970, record.id, record.id])
                    }
                    try db.execute(
                        sql: "UPDATE checkpoints SET state = ?, reason = ?, updated = ? WHERE id = ?",
                        arguments: [s.state.rawValue, s.reason, now.timeIntervalSince1970, record.id])
                    (record.state, record.reason, record.updated) = (s.state, s.reason, now)
                    try Self.shift(
                        db, olderThan: record.id, wasEvaluable: wasEvaluable, isEvaluable: record.isEvaluable)
                }
                return (record, false)
            }
            try Self.replaceLive(db, path: s.path, except: nil, at: now)
            try db.execute(
                sql: """
                    INSERT INTO checkpoints(run, run_folder, path, step, scheme, size, modified, content_hash, state,
                        reason, discovered, updated, snapshot) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)
                    """,
                arguments: [
                    s.run, s.runFolder, s.path, s.step, s.scheme, s.size, s.modified, s.contentHash, s.state.rawValue,
                    s.reason, now.timeIntervalSince1970, now.timeIntervalSince1970, s.snapshot,
                ])
            let id = db.lastInsertedRowID
            try Self.shift(db, olderThan: id, wasEvaluable: false, isEvaluable: s.state == .current)
            let record = CheckpointRecord(
                id: id, run: s.run, runFolder: s.runFolder, path: s.path, step: s.step,
                scheme: s.scheme, size: s.size, modified: s.modified, contentHash: s.contentHash, state: s.state,
                reason: s.reason, discovered: now, updated: now, snapshot: s.snapshot)
            return (record, true)
        }
    }

    public func liveVersion(path: String) async throws(StoreError) -> CheckpointRecord? {
        try await read("reading \(path)") { db in
            try Row.fetchOne(
                db,
                sql:
                    "SELECT * FROM checkpoints WHERE path = ? AND state NOT IN ('replaced', 'gone', 'overwritten') ORDER BY id DESC",
                arguments: [path]
            ).map(Self.checkpoint)
        }
    }

    /// Marks the live versions of `path` (but `except`) replaced, with their unfinished jobs.
    private static func replaceLive(_ db: Database, path: String, except: Int64?, at now: Date) throws {
        let live = try Int64.fetchAll(
            db, sql: "SELECT id FROM checkpoints WHERE path = ? AND state NOT IN ('replaced', 'gone', 'overwritten')",
            arguments: [path])
        for id in live where id != except { try end(db, checkpoint: id, as: .replaced, jobsAs: .replaced, at: now) }
    }

    /// Shifts the ranks of the unfinished jobs of versions older than `checkpoint` in its run folder when it became
    /// evaluable or stopped being so (`QueueSQL`).
    static func shift(_ db: Database, olderThan checkpoint: Int64, wasEvaluable: Bool, isEvaluable: Bool) throws {
        guard wasEvaluable != isEvaluable else { return }
        try db.execute(
            sql: QueueSQL.shift(olderThan: "?", by: isEvaluable ? 1 : -1), arguments: [checkpoint])
    }

    private static func end(
        _ db: Database, checkpoint: Int64, as state: CheckpointState, jobsAs jobState: JobState, at now: Date
    ) throws {
        // A version that never became a complete checkpoint has no jobs; once superseded it describes nothing.
        let neverComplete = CheckpointState.allCases.filter(\.neverComplete).map { "'\($0.rawValue)'" }
        try db.execute(
            sql: """
                DELETE FROM checkpoints WHERE id = ? AND state IN (\(neverComplete.joined(separator: ", ")))
                AND NOT EXISTS (SELECT 1 FROM jobs WHERE checkpoint_id = checkpoints.id)
                """, arguments: [checkpoint])
        if db.changesCount > 0 { return }
        let before = try Self.checkpoint(db, id: checkpoint)
        try db.execute(
            sql: "UPDATE checkpoints SET state = ?, updated = ? WHERE id = ?",
            arguments: [state.rawValue, now.timeIntervalSince1970, checkpoint])
        var after = before
        after.state = state
        try shift(db, olderThan: checkpoint, wasEvaluable: before.isEvaluable, isEvaluable: after.isEvaluable)
        // A version kept in a snapshot stays evaluable when its path is rewritten.
        if after.isEvaluable { return }
        try db.execute(
            sql: "UPDATE jobs SET state = ?, updated = ? WHERE checkpoint_id = ? AND state IN ('pending', 'running')",
            arguments: [jobState.rawValue, now.timeIntervalSince1970, checkpoint])
    }

    public func markGone(under root: String, present: Set<String>) async throws(StoreError) -> [CheckpointRecord] {
        let now = clock()
        return try await write("marking checkpoints under \(root) gone") { db in
            let prefix = root.hasSuffix("/") ? root : root + "/"
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM checkpoints WHERE state NOT IN ('replaced', 'gone', 'overwritten')
                    AND (run_folder = ? OR substr(run_folder, 1, ?) = ?)
                    """, arguments: [root, prefix.count, prefix])
            var marked: [CheckpointRecord] = []
            for row in rows {
                var record = try Self.checkpoint(row)
                guard !present.contains(record.path) else { continue }
                try Self.end(db, checkpoint: record.id, as: .gone, jobsAs: .gone, at: now)
                (record.state, record.updated) = (.gone, now)
                marked.append(record)
            }
            return marked
        }
    }

    public func ensureJob(checkpoint: Int64, settings: EvaluationSettings) async throws(StoreError) -> JobRecord? {
        let json = try Self.encode(settings)
        let hash = settings.contentHash
        let now = clock()
        return try await write("queueing a job") { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM checkpoints WHERE id = ?", arguments: [checkpoint]) != nil
            else { throw StoreError.missing("checkpoint \(checkpoint)") }
            try db.execute(
                sql: """
                    INSERT INTO jobs(checkpoint_id, settings, settings_hash, state, created, updated, rank, stage)
                    VALUES (?, ?, ?, 'pending', ?, ?, \(QueueSQL.rank(of: "?")), ?)
                    ON CONFLICT(checkpoint_id, settings_hash) DO UPDATE
                    SET state = 'pending', attempts = 0, error = NULL, updated = excluded.updated, rank = excluded.rank
                    WHERE jobs.state = 'cancelled'
                    """,
                arguments: [
                    checkpoint, json, hash, now.timeIntervalSince1970, now.timeIntervalSince1970, checkpoint,
                    settings.task.queueStage,
                ])
            // Inserted, or a job cancelled under another configuration taken up again (its results stay linked).
            guard db.changesCount > 0,
                let id = try Int64.fetchOne(
                    db, sql: "SELECT id FROM jobs WHERE checkpoint_id = ? AND settings_hash = ?",
                    arguments: [checkpoint, hash])
            else { return nil }
            return JobRecord(
                id: id, checkpointID: checkpoint, settings: settings, settingsHash: hash,
                state: .pending, done: 0, planned: 0, attempts: 0, notBefore: nil, error: nil, created: now,
                updated: now)
        }
    }

    public func claim(worker: String, leaseSeconds: Double) async throws(StoreError) -> ClaimedJob? {
        let now = clock().timeIntervalSince1970
        return try await write("claiming a job") { db in
            guard
                let id = try Int64.fetchOne(
                    db, sql: "\(QueueSQL.next(now: "?", indexedBy: true)) LIMIT 1", arguments: [now])
            else { return nil }
            try db.execute(
                sql: """
                    UPDATE jobs SET state = 'running', worker = ?, attempt = attempt + 1, lease_until = ?, updated = ?
                    WHERE id = ?
                    """, arguments: [worker, now + leaseSeconds, now, id])
            let job = try Self.job(db, id: id)
            return ClaimedJob(job: job, checkpoint: try Self.checkpoint(db, id: job.checkpointID))
        }
    }

    /// The SQL condition that `lease` still holds its job (`AND`-ed to an update of `jobs`), and its arguments.
    private static func held(_ lease: Lease) -> (sql: String, arguments: StatementArguments) {
        ("id = ? AND state = 'running' AND worker = ? AND attempt = ?", [lease.job, lease.worker, lease.attempt])
    }

    public func renew(_ lease: Lease, seconds: Double) async throws(StoreError) -> Lease {
        let now = clock()
        try await write("renewing the lease of job \(lease.job)") { db in
            let guarded = Self.held(lease)
            try db.execute(
                sql: "UPDATE jobs SET lease_until = ?, updated = ? WHERE \(guarded.sql)",
                arguments: [now.timeIntervalSince1970 + seconds, now.timeIntervalSince1970] + guarded.arguments)
            if db.changesCount == 0 { throw StoreError.lostLease(lease) }
        }
        var renewed = lease
        renewed.until = now.addingTimeInterval(seconds)
        return renewed
    }

    public func rescue(all: Bool) async throws(StoreError) -> Int {
        let now = clock().timeIntervalSince1970
        return try await write("returning expired leases to the queue") { db in
            try db.execute(
                sql: """
                    UPDATE jobs SET state = 'pending', lease_until = NULL, updated = ?
                    WHERE state = 'running' AND (? OR lease_until IS NULL OR lease_until < ?)
                    """, arguments: [now, all, now])
            let count = db.changesCount
            if all { try db.execute(sql: "UPDATE jobs SET not_before = NULL WHERE state = 'pending'") }
            return count
        }
    }

    public func heartbeat(_ worker: WorkerInfo) async throws(StoreError) {
        let now = clock().timeIntervalSince1970
        let roles = worker.roles.joined(separator: ",")
        try await write("recording worker \(worker.id)") { db in
            try db.execute(
                sql: """
                    INSERT INTO workers(id, host, pid, roles, job, started, heartbeat) VALUES (?,?,?,?,?,?,?)
                    ON CONFLICT(id) DO UPDATE SET job = excluded.job, roles = excluded.roles,
                        heartbeat = excluded.heartbeat
                    """, arguments: [worker.id, worker.host, worker.pid, roles, worker.job, now, now])
        }
    }

    public func workers(withinSeconds: Double) async throws(StoreError) -> [WorkerRecord] {
        let since = clock().timeIntervalSince1970 - withinSeconds
        return try await read("reading workers") { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM workers WHERE heartbeat >= ? ORDER BY heartbeat DESC", arguments: [since]
            ).map { row in
                let roles: String = row["roles"]
                return WorkerRecord(
                    info: WorkerInfo(
                        id: row["id"], host: row["host"], pid: row["pid"],
                        roles: roles.split(separator: ",").map(String.init), job: row["job"]),
                    started: Date(timeIntervalSince1970: row["started"]),
                    heartbeat: Date(timeIntervalSince1970: row["heartbeat"]))
            }
        }
    }

    public func releaseSnapshot(checkpoint: Int64) async throws(StoreError) -> String? {
        try await write("releasing the snapshot of checkpoint \(checkpoint)") { db in
            let unfinished = try Int.fetchOne(
                db, sql: "SELECT count(*) FROM jobs WHERE checkpoint_id = ? AND state IN ('pending', 'running')",
                arguments: [checkpoint])
            guard unfinished == 0,
                let before = try Row.fetchOne(
                    db, sql: "SELECT * FROM checkpoints WHERE id = ?", arguments: [checkpoint]
                ).map(Self.checkpoint), let path = before.snapshot
            else { return nil }
            try db.execute(sql: "UPDATE checkpoints SET snapshot = NULL WHERE id = ?", arguments: [checkpoint])
            var after = before
            after.snapshot = nil
            try Self.shift(db, olderThan: checkpoint, wasEvaluable: before.isEvaluable, isEvaluable: after.isEvaluable)
            return path
        }
    }

    public func cancelJobs(notIn configured: Set<String>, under roots: [String]?) async throws(StoreError) -> Int {
        let now = clock()
        return try await write("cancelling jobs of settings no longer configured") { db in
            let hashes = configured.sorted()
            let marks = hashes.isEmpty ? "''" : Array(repeating: "?", count: hashes.count).joined(separator: ", ")
            var arguments: [any DatabaseValueConvertible] = [now.timeIntervalSince1970] + hashes
            var scope = ""
            if let roots {
                // Versions in run folders at or under one of the roots.
                let each = roots.map { root -> String in
                    let prefix = root.hasSuffix("/") ? root : root + "/"
                    arguments += [root, prefix.count, prefix]
                    return "c.run_folder = ? OR substr(c.run_folder, 1, ?) = ?"
                }
                scope =
                    roots.isEmpty
                    ? " AND 0"
                    : " AND checkpoint_id IN (SELECT c.id FROM checkpoints c WHERE "
                        + each.map { "(\($0))" }.joined(separator: " OR ") + ")"
            }
            try db.execute(
                sql: """
                    UPDATE jobs SET state = 'cancelled', lease_until = NULL, updated = ?
                    WHERE state IN ('pending', 'running') AND settings_hash NOT IN (\(marks))\(scope)
                    """, arguments: StatementArguments(arguments))
            return db.changesCount
        }
    }

    public func reopenSkipped(fitting limit: Int?) async throws(StoreError) -> Int {
        let now = clock()
        return try await write("reopening jobs with skipped lengths") { db in
            try db.execute(
                sql: """
                    UPDATE jobs SET state = 'pending', updated = ?, rank = \(QueueSQL.rank(of: "jobs.checkpoint_id"))
                    WHERE state = 'done' AND id IN (
                        SELECT l.job_id FROM job_results l JOIN results r ON r.key = l.result_key
                        WHERE r.outcome = 'skipped' AND r.memory_estimate IS NOT NULL
                        AND (? IS NULL OR r.memory_estimate <= ?))
                    """, arguments: [now.timeIntervalSince1970, limit, limit])
            return db.changesCount
        }
    }

    public func requeue(checkpoint: Int64) async throws(StoreError) -> Int {
        let now = clock()
        return try await write("requeueing checkpoint \(checkpoint)") { db in
            guard try Int.fetchOne(db, sql: "SELECT 1 FROM checkpoints WHERE id = ?", arguments: [checkpoint]) != nil
            else { throw StoreError.missing("checkpoint \(checkpoint)") }
            try db.execute(
                sql: """
                    UPDATE jobs SET state = 'pending', attempts = 0, not_before = NULL, error = NULL, updated = ?,
                        rank = \(QueueSQL.rank(of: "jobs.checkpoint_id"))
                    WHERE checkpoint_id = ? AND state = 'failed'
                    """, arguments: [now.timeIntervalSince1970, checkpoint])
            return db.changesCount
        }
    }

    public func results(forKeys keys: [String]) async throws(StoreError) -> [String: ResultRecord] {
        try await read("reading results") { db in
            var found: [String: ResultRecord] = [:]
            for key in keys {
                if let row = try Row.fetchOne(db, sql: "SELECT * FROM results WHERE key = ?", arguments: [key]) {
                    found[key] = try Self.result(row)
                }
            }
            return found
        }
    }

    public func record(_ r: ResultRecord, lease: Lease, planned: Int) async throws(StoreError) {
        let point = try Self.encode(r.point)
        let now = clock()
        try await write("recording a result of job \(lease.job)") { db in
            try Self.checkHeld(db, lease)
            try db.execute(
                sql: """
                    INSERT INTO results(\(ResultSQL.columns))
                    VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
                    \(ResultSQL.replacingSkipped)
                    """,
                arguments: [
                    r.key, r.contentHash, r.architectureHash, r.scoringHash, r.engineVersion, r.series, r.length,
                    r.outcome.rawValue, r.protocolName,
                    r.point.perplexity, r.point.meanNLL, r.point.tokens, r.point.interval?.lower,
                    r.point.interval?.upper, r.reason, r.memoryEstimate, r.point.result?.seconds,
                    r.started.timeIntervalSince1970, r.finished.timeIntervalSince1970, point,
                ])
            try Self.link(db, keys: [r.key], job: lease.job, planned: planned, at: now)
        }
    }

    public func link(keys: [String], lease: Lease, planned: Int) async throws(StoreError) {
        let now = clock()
        try await write("linking results to job \(lease.job)") { db in
            try Self.checkHeld(db, lease)
            try Self.link(db, keys: keys, job: lease.job, planned: planned, at: now)
        }
    }

    /// Throws `lostLease` unless `lease` still holds its job; inside a write, so nothing changes it before commit.
    private static func checkHeld(_ db: Database, _ lease: Lease) throws {
        let guarded = held(lease)
        guard try Bool.fetchOne(db, sql: "SELECT 1 FROM jobs WHERE \(guarded.sql)", arguments: guarded.arguments) != nil
        else { throw StoreError.lostLease(lease) }
    }

    private static func link(_ db: Database, keys: [String], job: Int64, planned: Int, at now: Date) throws {
        for key in keys {
            try db.execute(
                sql: """
                    INSERT INTO job_results(job_id, result_key) SELECT ?, key FROM results WHERE key = ?
                    ON CONFLICT DO NOTHING
                    """, arguments: [job, key])
        }
        try db.execute(
            sql: """
                UPDATE jobs SET done = (SELECT count(*) FROM job_results WHERE job_id = ?), planned = ?, updated = ?
                WHERE id = ?
                """, arguments: [job, planned, now.timeIntervalSince1970, job])
        guard db.changesCount > 0 else { throw StoreError.missing("job \(job)") }
    }

    public func finish(
        _ lease: Lease, state: JobState, error: String?, attempts: Int, retrySeconds: Double?
    ) async throws(StoreError) {
        let now = clock().timeIntervalSince1970
        try await write("finishing job \(lease.job)") { db in
            let guarded = Self.held(lease)
            try db.execute(
                sql: """
                    UPDATE jobs SET state = ?, error = ?, attempts = ?, not_before = ?, lease_until = NULL, updated = ?
                    WHERE \(guarded.sql)
                    """,
                arguments: [state.rawValue, error, attempts, retrySeconds.map { now + $0 }, now] + guarded.arguments)
            if db.changesCount == 0 { throw StoreError.lostLease(lease) }
        }
    }
}
