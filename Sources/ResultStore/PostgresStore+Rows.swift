import Evaluation
import Foundation
import PostgresNIO

extension PostgresStore {
    // MARK: Rows

    /// Runs a decoding step, its failures as `StoreError.corrupt`.
    static func decoded<T>(_ body: () throws -> T) throws(StoreError) -> T {
        do { return try body() } catch let error as StoreError { throw error } catch {
            throw .corrupt(path: "", what: "a row that does not decode (\(error))")
        }
    }

    /// The checkpoint columns, each named `prefix` + its name: what a query returning a job beside its version
    /// selects.
    static func checkpointColumns(_ table: String, prefix: String) -> String {
        [
            "id", "run", "run_folder", "path", "step", "scheme", "size", "modified", "content_hash", "state", "reason",
            "discovered", "updated", "snapshot",
        ].map { "\(table).\($0) AS \(prefix)\($0)" }.joined(separator: ", ")
    }

    static func checkpoint(_ row: PostgresRow, prefix p: String = "") throws -> CheckpointRecord {
        let r = row.makeRandomAccess()
        let id = try r[p + "id"].decode(Int64.self)
        let state = try r[p + "state"].decode(String.self)
        return CheckpointRecord(
            id: id, run: try r[p + "run"].decode(String.self), runFolder: try r[p + "run_folder"].decode(String.self),
            path: try r[p + "path"].decode(String.self), step: try r[p + "step"].decode(Int64?.self).map(Int.init),
            scheme: try r[p + "scheme"].decode(String.self), size: Int(try r[p + "size"].decode(Int64.self)),
            modified: try r[p + "modified"].decode(Double.self),
            contentHash: try r[p + "content_hash"].decode(String.self),
            state: try StoreJSON.known(
                CheckpointState(rawValue: state), "checkpoint state '\(state)' (checkpoint \(id))"),
            reason: try r[p + "reason"].decode(String?.self), discovered: try r[p + "discovered"].decode(Date.self),
            updated: try r[p + "updated"].decode(Date.self), snapshot: try r[p + "snapshot"].decode(String?.self))
    }

    static func job(_ row: PostgresRow) throws -> JobRecord {
        let r = row.makeRandomAccess()
        let id = try r["id"].decode(Int64.self)
        let state = try r["state"].decode(String.self)
        let settings = try r["settings"].decode(String.self)
        return JobRecord(
            id: id, checkpointID: try r["checkpoint_id"].decode(Int64.self),
            settings: try decoder.decode(EvaluationSettings.self, from: Data(settings.utf8)),
            settingsHash: try r["settings_hash"].decode(String.self),
            state: try StoreJSON.known(JobState(rawValue: state), "job state '\(state)' (job \(id))"),
            done: Int(try r["done"].decode(Int32.self)), planned: Int(try r["planned"].decode(Int32.self)),
            attempts: Int(try r["attempts"].decode(Int32.self)), notBefore: try r["not_before"].decode(Date?.self),
            error: try r["error"].decode(String?.self), created: try r["created"].decode(Date.self),
            updated: try r["updated"].decode(Date.self), worker: try r["worker"].decode(String?.self),
            attempt: Int(try r["attempt"].decode(Int32.self)), leaseUntil: try r["lease_until"].decode(Date?.self))
    }

    static func result(_ row: PostgresRow) throws -> ResultRecord {
        let r = row.makeRandomAccess()
        let outcome = try r["outcome"].decode(String.self)
        let point = try r["point"].decode(String.self)
        let key = ResultKey(
            contentHash: try r["content_hash"].decode(String.self),
            architectureHash: try r["architecture_hash"].decode(String.self),
            scoringHash: try r["scoring_hash"].decode(String.self), series: try r["series"].decode(String.self),
            length: Int(try r["length"].decode(Int32.self)), engineVersion: try r["engine_version"].decode(String.self))
        return ResultRecord(
            key: key, outcome: try StoreJSON.known(ResultOutcome(rawValue: outcome), "result outcome '\(outcome)'"),
            point: try decoder.decode(SweepPoint.self, from: Data(point.utf8)),
            reason: try r["reason"].decode(String?.self),
            memoryEstimate: try r["memory_estimate"].decode(Int64?.self).map(Int.init),
            started: try r["started"].decode(Date.self), finished: try r["finished"].decode(Date.self))
    }

    static func encode(_ value: some Encodable) throws(StoreError) -> String { try StoreJSON.encode(value) }

    static var decoder: JSONDecoder { StoreJSON.decoder }
}
