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
    private let pool: any DatabaseWriter
    /// The lock file's descriptor, held open for the writer's lifetime.
    private let lockDescriptor: Int32?

    /// Opens (creating it and its folder if needed) the store at `path` for writing, and takes the writer lock.
    /// - Parameter maximumPages: caps the file at this many pages (SQLite then reports "database or disk is full"):
    ///   how tests simulate a full disk.
    /// - Throws: `StoreError.locked` when another process writes it; `.cannotOpen` otherwise.
    public init(writingTo path: String, maximumPages: Int? = nil) throws(StoreError) {
        self.path = path
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

    /// Opens an existing store read-only (`status`, `results`), while a daemon may be writing it.
    /// - Throws: `StoreError.cannotOpen` when there is no store at `path` or it is not one.
    public init(readingFrom path: String) throws(StoreError) {
        self.path = path
        lockDescriptor = nil
        guard FileManager.default.fileExists(atPath: path) else {
            throw .cannotOpen(
                path: path, reason: "no store here yet; `extrapolate watch` creates it (or pass --store PATH)")
        }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(10)
        do {
            pool = try Self.openForReading(path, configuration: configuration)
            let applied = try pool.read { db in try Self.migrator.appliedIdentifiers(db) }
            let known = Set(Self.migrator.migrations)
            if let unknown = applied.subtracting(known).sorted().first {
                throw StoreError.cannotOpen(
                    path: path, reason: "written by a newer Extrapolate (migration '\(unknown)'); upgrade to read it")
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

    public func register(_ s: Sighting, at now: Date) throws(StoreError) -> (record: CheckpointRecord, isNew: Bool) {
        try write("registering \(s.path)") { db in
            if let row = try Row.fetchOne(
                db, sql: "SELECT * FROM checkpoints WHERE path = ? AND content_hash = ?",
                arguments: [s.path, s.contentHash])
            {
                var record = try Self.checkpoint(row)
                if record.state != s.state || record.reason != s.reason {
                    if !record.isLive {
                        // Back at its path (remounted, or rewritten to the same bytes): the live version again, and
                        // what it had left to do resumes.
                        try Self.replaceLive(db, path: s.path, except: record.id, at: now)
                        try db.execute(
                            sql: """
                                UPDATE jobs SET state = 'pending', updated = ?
                                WHERE checkpoint_id = ? AND state IN ('gone', 'replaced')
                                """, arguments: [now.timeIntervalSince1970, record.id])
                    }
                    try db.execute(
                        sql: "UPDATE checkpoints SET state = ?, reason = ?, updated = ? WHERE id = ?",
                        arguments: [s.state.rawValue, s.reason, now.timeIntervalSince1970, record.id])
                    (record.state, record.reason, record.updated) = (s.state, s.reason, now)
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
            let record = CheckpointRecord(
                id: db.lastInsertedRowID, run: s.run, runFolder: s.runFolder, path: s.path, step: s.step,
                scheme: s.scheme, size: s.size, modified: s.modified, contentHash: s.contentHash, state: s.state,
                reason: s.reason, discovered: now, updated: now, snapshot: s.snapshot)
            return (record, true)
        }
    }

    public func liveVersion(path: String) throws(StoreError) -> CheckpointRecord? {
        try read("reading \(path)") { db in
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
        try db.execute(
            sql: "UPDATE checkpoints SET state = ?, updated = ? WHERE id = ?",
            arguments: [state.rawValue, now.timeIntervalSince1970, checkpoint])
        // A version kept in a snapshot stays evaluable when its path is rewritten.
        let kept = try Bool.fetchOne(
            db, sql: "SELECT snapshot IS NOT NULL FROM checkpoints WHERE id = ?", arguments: [checkpoint])
        if state == .replaced, kept == true { return }
        try db.execute(
            sql: "UPDATE jobs SET state = ?, updated = ? WHERE checkpoint_id = ? AND state IN ('pending', 'running')",
            arguments: [jobState.rawValue, now.timeIntervalSince1970, checkpoint])
    }

    public func markGone(under root: String, present: Set<String>, at now: Date) throws(StoreError)
        -> [CheckpointRecord]
    {
        try write("marking checkpoints under \(root) gone") { db in
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

    public func ensureJob(checkpoint: Int64, settings: EvaluationSettings, at now: Date) throws(StoreError)
        -> JobRecord?
    {
        let json = try Self.encode(settings)
        let hash = settings.contentHash
        return try write("queueing a job") { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM checkpoints WHERE id = ?", arguments: [checkpoint]) != nil
            else { throw StoreError.missing("checkpoint \(checkpoint)") }
            try db.execute(
                sql: """
                    INSERT INTO jobs(checkpoint_id, settings, settings_hash, state, created, updated)
                    VALUES (?, ?, ?, 'pending', ?, ?) ON CONFLICT(checkpoint_id, settings_hash) DO UPDATE
                    SET state = 'pending', attempts = 0, error = NULL, updated = excluded.updated
                    WHERE jobs.state = 'cancelled'
                    """,
                arguments: [checkpoint, json, hash, now.timeIntervalSince1970, now.timeIntervalSince1970])
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

    public func claim(at now: Date) throws(StoreError) -> ClaimedJob? {
        try write("claiming a job") { db in
            // One query for the candidates and one for the runs' current versions; only the chosen job is decoded.
            let current = try Row.fetchAll(db, sql: "SELECT * FROM checkpoints WHERE \(Self.evaluable())").map(
                Self.checkpoint)
            let byID = Dictionary(uniqueKeysWithValues: current.map { ($0.id, $0) })
            let ready = try Row.fetchAll(
                db,
                sql: """
                    SELECT j.id AS job_id, j.checkpoint_id AS checkpoint_id FROM jobs j
                    JOIN checkpoints c ON c.id = j.checkpoint_id
                    WHERE j.state = 'pending' AND \(Self.evaluable("c."))
                    AND (j.not_before IS NULL OR j.not_before <= ?)
                    """, arguments: [now.timeIntervalSince1970]
            ).compactMap { row -> (job: Int64, checkpoint: CheckpointRecord)? in
                let checkpoint: Int64 = row["checkpoint_id"]
                return byID[checkpoint].map { (row["job_id"], $0) }
            }
            guard let id = JobOrder.next(ready, current: current) else { return nil }
            try db.execute(
                sql: "UPDATE jobs SET state = 'running', updated = ? WHERE id = ?",
                arguments: [now.timeIntervalSince1970, id])
            let job = try Self.job(db, id: id)
            guard let checkpoint = byID[job.checkpointID] else { throw StoreError.missing("checkpoint of job \(id)") }
            return ClaimedJob(job: job, checkpoint: checkpoint)
        }
    }

    /// The SQL condition of `CheckpointRecord.isEvaluable`, on the checkpoints table named by `prefix` (`c.`).
    static func evaluable(_ prefix: String = "") -> String {
        "(\(prefix)state = 'current' OR (\(prefix)state = 'replaced' AND \(prefix)snapshot IS NOT NULL))"
    }

    public func releaseSnapshot(checkpoint: Int64) throws(StoreError) -> String? {
        try write("releasing the snapshot of checkpoint \(checkpoint)") { db in
            let unfinished = try Int.fetchOne(
                db, sql: "SELECT count(*) FROM jobs WHERE checkpoint_id = ? AND state IN ('pending', 'running')",
                arguments: [checkpoint])
            guard unfinished == 0,
                let path = try String.fetchOne(
                    db, sql: "SELECT snapshot FROM checkpoints WHERE id = ?", arguments: [checkpoint])
            else { return nil }
            try db.execute(sql: "UPDATE checkpoints SET snapshot = NULL WHERE id = ?", arguments: [checkpoint])
            return path
        }
    }

    public func requeueRunning(at now: Date) throws(StoreError) -> Int {
        try write("requeueing interrupted jobs") { db in
            try db.execute(
                sql: "UPDATE jobs SET state = 'pending', updated = ? WHERE state = 'running'",
                arguments: [now.timeIntervalSince1970])
            let count = db.changesCount
            try db.execute(sql: "UPDATE jobs SET not_before = NULL WHERE state = 'pending'")
            return count
        }
    }

    public func cancelJobs(notIn configured: Set<String>, at now: Date) throws(StoreError) -> Int {
        try write("cancelling jobs of settings no longer configured") { db in
            let hashes = configured.sorted()
            let marks = hashes.isEmpty ? "''" : Array(repeating: "?", count: hashes.count).joined(separator: ", ")
            try db.execute(
                sql: """
                    UPDATE jobs SET state = 'cancelled', updated = ?
                    WHERE state IN ('pending', 'running') AND settings_hash NOT IN (\(marks))
                    """, arguments: StatementArguments([now.timeIntervalSince1970] + hashes))
            return db.changesCount
        }
    }

    public func reopenSkipped(fitting limit: Int?, at now: Date) throws(StoreError) -> Int {
        try write("reopening jobs with skipped lengths") { db in
            try db.execute(
                sql: """
                    UPDATE jobs SET state = 'pending', updated = ? WHERE state = 'done' AND id IN (
                        SELECT l.job_id FROM job_results l JOIN results r ON r.key = l.result_key
                        WHERE r.outcome = 'skipped' AND r.memory_estimate IS NOT NULL
                        AND (? IS NULL OR r.memory_estimate <= ?))
                    """, arguments: [now.timeIntervalSince1970, limit, limit])
            return db.changesCount
        }
    }

    public func requeue(checkpoint: Int64, at now: Date) throws(StoreError) -> Int {
        try write("requeueing checkpoint \(checkpoint)") { db in
            guard try Int.fetchOne(db, sql: "SELECT 1 FROM checkpoints WHERE id = ?", arguments: [checkpoint]) != nil
            else { throw StoreError.missing("checkpoint \(checkpoint)") }
            try db.execute(
                sql: """
                    UPDATE jobs SET state = 'pending', attempts = 0, not_before = NULL, error = NULL, updated = ?
                    WHERE checkpoint_id = ? AND state = 'failed'
                    """, arguments: [now.timeIntervalSince1970, checkpoint])
            return db.changesCount
        }
    }

    public func results(forKeys keys: [String]) throws(StoreError) -> [String: ResultRecord] {
        try read("reading results") { db in
            var found: [String: ResultRecord] = [:]
            for key in keys {
                if let row = try Row.fetchOne(db, sql: "SELECT * FROM results WHERE key = ?", arguments: [key]) {
                    found[key] = try Self.result(row)
                }
            }
            return found
        }
    }

    public func record(_ r: ResultRecord, job: Int64, planned: Int, at now: Date) throws(StoreError) {
        let point = try Self.encode(r.point)
        try write("recording a result of job \(job)") { db in
            try db.execute(
                sql: """
                    INSERT INTO results(key, content_hash, architecture_hash, scoring_hash, engine_version, series,
                        length, outcome, protocol, perplexity, mean_nll, tokens, interval_lower, interval_upper,
                        reason, memory_estimate, seconds, started, finished, point)
                    VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
                    ON CONFLICT(key) DO UPDATE SET outcome = excluded.outcome, perplexity = excluded.perplexity,
                        mean_nll = excluded.mean_nll, tokens = excluded.tokens,
                        interval_lower = excluded.interval_lower, interval_upper = excluded.interval_upper,
                        reason = excluded.reason, memory_estimate = excluded.memory_estimate,
                        seconds = excluded.seconds, started = excluded.started, finished = excluded.finished,
                        point = excluded.point
                    WHERE results.outcome = 'skipped'
                    """,
                arguments: [
                    r.key, r.contentHash, r.architectureHash, r.scoringHash, r.engineVersion, r.series, r.length,
                    r.outcome.rawValue, r.point.result?.evaluationProtocol.description ?? r.series,
                    r.point.perplexity, r.point.meanNLL, r.point.tokens, r.point.interval?.lower,
                    r.point.interval?.upper, r.reason, r.memoryEstimate, r.point.result?.seconds,
                    r.started.timeIntervalSince1970, r.finished.timeIntervalSince1970, point,
                ])
            try Self.link(db, keys: [r.key], job: job, planned: planned, at: now)
        }
    }

    public func link(keys: [String], job: Int64, planned: Int, at now: Date) throws(StoreError) {
        try write("linking results to job \(job)") { db in
            try Self.link(db, keys: keys, job: job, planned: planned, at: now)
        }
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
        job: Int64, state: JobState, error: String?, attempts: Int, notBefore: Date?, at now: Date
    ) throws(StoreError) {
        try write("finishing job \(job)") { db in
            try db.execute(
                sql: "UPDATE jobs SET state = ?, error = ?, attempts = ?, not_before = ?, updated = ? WHERE id = ?",
                arguments: [
                    state.rawValue, error, attempts, notBefore?.timeIntervalSince1970, now.timeIntervalSince1970, job,
                ])
        }
    }

    public func status() throws(StoreError) -> StoreStatus {
        try read("reading the status") { db in
            let checkpoints = try Row.fetchAll(db, sql: "SELECT * FROM checkpoints ORDER BY id").map(Self.checkpoint)
            let jobs = try Row.fetchAll(db, sql: "SELECT * FROM jobs ORDER BY id").map(Self.job)
            let results = try Int.fetchOne(db, sql: "SELECT count(*) FROM results") ?? 0
            return StoreStatus(checkpoints: checkpoints, jobs: jobs, results: results)
        }
    }

    public func results(run: String?) throws(StoreError) -> [ResultRow] {
        try read("reading results") { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT DISTINCT c.id AS checkpoint_id, j.settings_hash AS settings_hash, x.*
                    FROM job_results l JOIN jobs j ON j.id = l.job_id JOIN checkpoints c ON c.id = j.checkpoint_id
                    JOIN results x ON x.key = l.result_key
                    WHERE ? IS NULL OR c.run = ?
                    """, arguments: [run, run])
            let checkpoints = Dictionary(
                uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT * FROM checkpoints").map(Self.checkpoint).map {
                    ($0.id, $0)
                })
            var seen = Set<String>()
            var listed: [ResultRow] = []
            for row in rows {
                let checkpointID: Int64 = row["checkpoint_id"]
                let result = try Self.result(row)
                guard seen.insert("\(checkpointID)|\(result.key)").inserted,
                    let checkpoint = checkpoints[checkpointID]
                else { continue }
                listed.append(
                    ResultRow(
                        checkpointID: checkpoint.id, run: checkpoint.run, checkpoint: checkpoint.path,
                        step: checkpoint.step,
                        checkpointState: checkpoint.state, settingsHash: row["settings_hash"], result: result))
            }
            return listed.sorted(by: ResultRow.listingOrder)
        }
    }

    // MARK: Rows

    private static func checkpoint(_ db: Database, id: Int64) throws -> CheckpointRecord {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM checkpoints WHERE id = ?", arguments: [id]) else {
            throw StoreError.missing("checkpoint \(id)")
        }
        return try checkpoint(row)
    }

    private static func checkpoint(_ row: Row) throws -> CheckpointRecord {
        let state: String = row["state"]
        return CheckpointRecord(
            id: row["id"], run: row["run"], runFolder: row["run_folder"], path: row["path"], step: row["step"],
            scheme: row["scheme"], size: row["size"], modified: row["modified"], contentHash: row["content_hash"],
            state: CheckpointState(rawValue: state) ?? .invalid, reason: row["reason"],
            discovered: Date(timeIntervalSince1970: row["discovered"]),
            updated: Date(timeIntervalSince1970: row["updated"]), snapshot: row["snapshot"])
    }

    private static func job(_ db: Database, id: Int64) throws -> JobRecord {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM jobs WHERE id = ?", arguments: [id]) else {
            throw StoreError.missing("job \(id)")
        }
        return try job(row)
    }

    private static func job(_ row: Row) throws -> JobRecord {
        let state: String = row["state"]
        let settings: String = row["settings"]
        let notBefore: Double? = row["not_before"]
        return JobRecord(
            id: row["id"], checkpointID: row["checkpoint_id"],
            settings: try Self.decoder.decode(EvaluationSettings.self, from: Data(settings.utf8)),
            settingsHash: row["settings_hash"], state: JobState(rawValue: state) ?? .failed, done: row["done"],
            planned: row["planned"], attempts: row["attempts"],
            notBefore: notBefore.map(Date.init(timeIntervalSince1970:)), error: row["error"],
            created: Date(timeIntervalSince1970: row["created"]), updated: Date(timeIntervalSince1970: row["updated"]))
    }

    private static func result(_ row: Row) throws -> ResultRecord {
        let point: String = row["point"]
        let outcome: String = row["outcome"]
        let key = ResultKey(
            contentHash: row["content_hash"], architectureHash: row["architecture_hash"],
            scoringHash: row["scoring_hash"], series: row["series"], length: row["length"],
            engineVersion: row["engine_version"])
        return ResultRecord(
            key: key, outcome: ResultOutcome(rawValue: outcome) ?? .evaluated,
            point: try Self.decoder.decode(SweepPoint.self, from: Data(point.utf8)), reason: row["reason"],
            memoryEstimate: row["memory_estimate"], started: Date(timeIntervalSince1970: row["started"]),
            finished: Date(timeIntervalSince1970: row["finished"]))
    }

    // MARK: Access

    func write<T>(_ operation: String, _ body: (Database) throws -> T) throws(StoreError) -> T {
        guard lockDescriptor != nil else {
            throw .failed(path: path, operation: operation, reason: "the store was opened read-only")
        }
        return try access(operation) { try pool.write(body) }
    }

    func read<T>(_ operation: String, _ body: (Database) throws -> T) throws(StoreError) -> T {
        try access(operation) { try pool.read(body) }
    }

    /// Runs a database access, its errors as `StoreError` naming the store and the operation.
    private func access<T>(_ operation: String, _ body: () throws -> T) throws(StoreError) -> T {
        do { return try body() } catch let error as StoreError { throw error } catch {
            throw .failed(path: path, operation: operation, reason: Self.reason(error))
        }
    }

    private static func encode(_ value: some Encodable) throws(StoreError) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do { return String(decoding: try encoder.encode(value), as: UTF8.self) } catch {
            throw .failed(path: "", operation: "encoding a record", reason: "\(error)")
        }
    }

    private static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return decoder
    }

    private static func reason(_ error: Error) -> String {
        if let error = error as? DatabaseError { return error.message ?? error.description }
        return "\(error)"
    }
}
