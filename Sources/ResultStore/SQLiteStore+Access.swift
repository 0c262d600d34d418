import Evaluation
import Foundation
import GRDB

extension SQLiteStore {
    // MARK: Rows

    static func checkpoint(_ db: Database, id: Int64) throws -> CheckpointRecord {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM checkpoints WHERE id = ?", arguments: [id]) else {
            throw StoreError.missing("checkpoint \(id)")
        }
        return try checkpoint(row)
    }

    static func checkpoint(_ row: Row) throws -> CheckpointRecord {
        let state: String = row["state"]
        let id: Int64 = row["id"]
        return CheckpointRecord(
            id: row["id"], run: row["run"], runFolder: row["run_folder"], path: row["path"], step: row["step"],
            scheme: row["scheme"], size: row["size"], modified: row["modified"], contentHash: row["content_hash"],
            state: try StoreJSON.known(
                CheckpointState(rawValue: state), "checkpoint state '\(state)' (checkpoint \(id))"),
            reason: row["reason"],
            discovered: Date(timeIntervalSince1970: row["discovered"]),
            updated: Date(timeIntervalSince1970: row["updated"]), snapshot: row["snapshot"])
    }

    static func job(_ db: Database, id: Int64) throws -> JobRecord {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM jobs WHERE id = ?", arguments: [id]) else {
            throw StoreError.missing("job \(id)")
        }
        return try job(row)
    }

    static func job(_ row: Row) throws -> JobRecord {
        let state: String = row["state"]
        let settings: String = row["settings"]
        let notBefore: Double? = row["not_before"]
        let leaseUntil: Double? = row["lease_until"]
        let id: Int64 = row["id"]
        return JobRecord(
            id: row["id"], checkpointID: row["checkpoint_id"],
            settings: try Self.decoder.decode(EvaluationSettings.self, from: Data(settings.utf8)),
            settingsHash: row["settings_hash"],
            state: try StoreJSON.known(JobState(rawValue: state), "job state '\(state)' (job \(id))"),
            done: row["done"],
            planned: row["planned"], attempts: row["attempts"],
            notBefore: notBefore.map(Date.init(timeIntervalSince1970:)), error: row["error"],
            created: Date(timeIntervalSince1970: row["created"]), updated: Date(timeIntervalSince1970: row["updated"]),
            worker: row["worker"], attempt: row["attempt"],
            leaseUntil: leaseUntil.map(Date.init(timeIntervalSince1970:)))
    }

    /// `value`, or `StoreError.corrupt` naming `what` when the store held something this version does not know.
    static func result(_ row: Row) throws -> ResultRecord {
        let point: String = row["point"]
        let outcome: String = row["outcome"]
        let key = ResultKey(
            contentHash: row["content_hash"], architectureHash: row["architecture_hash"],
            scoringHash: row["scoring_hash"], series: row["series"], length: row["length"],
            engineVersion: row["engine_version"])
        return ResultRecord(
            key: key, outcome: try StoreJSON.known(ResultOutcome(rawValue: outcome), "result outcome '\(outcome)'"),
            point: try Self.decoder.decode(SweepPoint.self, from: Data(point.utf8)), reason: row["reason"],
            memoryEstimate: row["memory_estimate"], started: Date(timeIntervalSince1970: row["started"]),
            finished: Date(timeIntervalSince1970: row["finished"]))
    }

    // MARK: Access

    func write<T: Sendable>(
        _ operation: String, _ body: @escaping @Sendable (Database) throws -> T
    ) async throws(StoreError) -> T {
        guard lockDescriptor != nil else {
            throw .failed(path: path, operation: operation, reason: "the store was opened read-only")
        }
        do { return try await pool.write(body) } catch { throw describe(error, operation) }
    }

    func read<T: Sendable>(
        _ operation: String, _ body: @escaping @Sendable (Database) throws -> T
    ) async throws(StoreError) -> T {
        do { return try await pool.read(body) } catch { throw describe(error, operation) }
    }

    /// The same writes, blocking: for `prune`, which a command runs with the daemon stopped.
    func writeNow<T>(_ operation: String, _ body: (Database) throws -> T) throws(StoreError) -> T {
        guard lockDescriptor != nil else {
            throw .failed(path: path, operation: operation, reason: "the store was opened read-only")
        }
        do { return try pool.write(body) } catch { throw describe(error, operation) }
    }

    /// A database access's error as `StoreError` naming the store and the operation.
    func describe(_ error: any Error, _ operation: String) -> StoreError {
        switch error as? StoreError {
        case .corrupt(_, let what): return .corrupt(path: path, what: what)
        case .some(let error): return error
        case nil: return .failed(path: path, operation: operation, reason: Self.reason(error))
        }
    }

    static func encode(_ value: some Encodable) throws(StoreError) -> String { try StoreJSON.encode(value) }

    static var decoder: JSONDecoder { StoreJSON.decoder }

    static func reason(_ error: Error) -> String {
        if let error = error as? DatabaseError { return error.message ?? error.description }
        return "\(error)"
    }
}
