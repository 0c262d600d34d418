import Evaluation
import Foundation
import GRDB

// Reading a SQLite store: counts, status, the runs at a glance, results.
extension SQLiteStore {
    public func counts() async throws(StoreError) -> StoreCounts {
        try await read("counting") { db in
            var jobs: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT state, count(*) AS n FROM jobs GROUP BY state") {
                jobs[row["state"]] = row["n"]
            }
            let versions = try Row.fetchOne(db, sql: "SELECT count(*) AS n, max(updated) AS changed FROM checkpoints")
            let jobChange = try Double.fetchOne(db, sql: "SELECT max(updated) FROM jobs")
            let results = try Int.fetchOne(db, sql: "SELECT count(*) FROM results") ?? 0
            let changed = [versions?["changed"] as Double?, jobChange].compactMap { $0 }.max()
            return StoreCounts(
                jobs: jobs, checkpoints: versions?["n"] ?? 0, results: results,
                changed: changed.map(Date.init(timeIntervalSince1970:)))
        }
    }

    public func status(run: String?) async throws(StoreError) -> StoreStatus {
        try await read("reading the status") { db in
            let scope = run == nil ? "" : " WHERE c.run = ?"
            let arguments: StatementArguments = run.map { [$0] } ?? []
            let checkpoints = try Row.fetchAll(
                db, sql: "SELECT c.* FROM checkpoints c\(scope) ORDER BY c.id", arguments: arguments
            ).map(Self.checkpoint)
            let jobs = try Row.fetchAll(
                db,
                sql: "SELECT j.* FROM jobs j JOIN checkpoints c ON c.id = j.checkpoint_id\(scope) ORDER BY j.id",
                arguments: arguments
            ).map(Self.job)
            let results = try Int.fetchOne(db, sql: "SELECT count(*) FROM results") ?? 0
            return StoreStatus(checkpoints: checkpoints, jobs: jobs, results: results)
        }
    }

    public func unsettled() async throws(StoreError) -> StoreStatus {
        try await read("reading the versions that need a look") { db in
            let checkpoints = try Row.fetchAll(
                db, sql: "SELECT * FROM checkpoints WHERE id IN (\(RunSummary.unsettledSQL)) ORDER BY id"
            ).map(Self.checkpoint)
            let jobs = try Row.fetchAll(
                db, sql: "SELECT * FROM jobs WHERE checkpoint_id IN (\(RunSummary.unsettledSQL)) ORDER BY id"
            ).map(Self.job)
            let results = try Int.fetchOne(db, sql: "SELECT count(*) FROM results") ?? 0
            return StoreStatus(checkpoints: checkpoints, jobs: jobs, results: results)
        }
    }

    public func runs(named: String?) async throws(StoreError) -> [RunSummary] {
        let name = named == nil ? nil : "?"
        let arguments: StatementArguments = named.map { [$0] } ?? []
        return try await read("summarising the runs") { db in
            let versions = try Row.fetchAll(db, sql: RunSummary.versionsSQL(named: name), arguments: arguments).map {
                row in
                let changed: Double? = row[5]
                return (
                    run: row[0] as String, folder: row[1] as String, state: row[2] as String, count: row[3] as Int,
                    newestStep: row[4] as Int?, changed: changed.map(Date.init(timeIntervalSince1970:))
                )
            }
            let jobs = try Row.fetchAll(db, sql: RunSummary.jobsSQL(named: name), arguments: arguments).map { row in
                let changed: Double? = row[4]
                return (
                    run: row[0] as String, state: row[1] as String, count: row[2] as Int, done: row[3] as Int,
                    changed: changed.map(Date.init(timeIntervalSince1970:))
                )
            }
            return RunSummary.assemble(versions: versions, jobs: jobs)
        }
    }

    public func results(run: String?, checkpoint: Int64?) async throws(StoreError) -> [ResultRow] {
        try await read("reading results") { db in
            var conditions: [String] = []
            var arguments: StatementArguments = []
            if let run {
                conditions.append("c.run = ?")
                arguments += [run]
            }
            if let checkpoint {
                conditions.append("c.id = ?")
                arguments += [checkpoint]
            }
            let rows = try Row.fetchAll(db, sql: ResultSQL.listing(conditions), arguments: arguments)
            var seen = Set<String>()
            var listed: [ResultRow] = []
            for row in rows {
                let checkpointID: Int64 = row["checkpoint_id"]
                let result = try Self.result(row)
                guard seen.insert("\(checkpointID)|\(result.key)").inserted else { continue }
                let state: String = row["checkpoint_state"]
                listed.append(
                    ResultRow(
                        checkpointID: checkpointID, run: row["checkpoint_run"], checkpoint: row["checkpoint_path"],
                        step: row["checkpoint_step"],
                        checkpointState: try StoreJSON.known(
                            CheckpointState(rawValue: state), "checkpoint state '\(state)' (checkpoint \(checkpointID))"
                        ),
                        settingsHash: row["settings_hash"], result: result))
            }
            return listed.sorted(by: ResultRow.listingOrder)
        }
    }
}
