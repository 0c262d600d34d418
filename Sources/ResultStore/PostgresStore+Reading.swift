import Evaluation
import Foundation
import PostgresNIO

// Reading a PostgreSQL store: counts, status, the runs at a glance, results.
extension PostgresStore {
    public func counts() async throws(StoreError) -> StoreCounts {
        try await transaction("counting") { [self] db in
            var jobs: [String: Int] = [:]
            for try await (state, count) in try await db.query(
                "SELECT state, count(*) FROM jobs GROUP BY state", logger: logger
            ).decode((String, Int64).self) {
                jobs[state] = Int(count)
            }
            let checkpoints = try await values(db, "SELECT count(*) FROM checkpoints", as: Int64.self).first ?? 0
            let results = try await values(db, "SELECT count(*) FROM results", as: Int64.self).first ?? 0
            let changed =
                try await values(
                    db,
                    """
                    SELECT greatest((SELECT max(updated) FROM checkpoints), (SELECT max(updated) FROM jobs))
                    """, as: Date?.self
                ).first ?? nil
            return StoreCounts(jobs: jobs, checkpoints: Int(checkpoints), results: Int(results), changed: changed)
        }
    }

    public func status(run: String?) async throws(StoreError) -> StoreStatus {
        try await transaction("reading the status") { [self] db in
            let checkpoints: [CheckpointRecord]
            let jobs: [JobRecord]
            if let run {
                checkpoints = try await db.query(
                    "SELECT * FROM checkpoints WHERE run = \(run) ORDER BY id", logger: logger
                ).collect().map { try Self.checkpoint($0) }
                jobs = try await db.query(
                    """
                    SELECT j.* FROM jobs j JOIN checkpoints c ON c.id = j.checkpoint_id WHERE c.run = \(run)
                    ORDER BY j.id
                    """, logger: logger
                ).collect().map(Self.job)
            } else {
                checkpoints = try await db.query("SELECT * FROM checkpoints ORDER BY id", logger: logger).collect()
                    .map { try Self.checkpoint($0) }
                jobs = try await db.query("SELECT * FROM jobs ORDER BY id", logger: logger).collect().map(Self.job)
            }
            let count = try await values(db, "SELECT count(*) FROM results", as: Int64.self).first ?? 0
            return StoreStatus(checkpoints: checkpoints, jobs: jobs, results: Int(count))
        }
    }

    public func unsettled() async throws(StoreError) -> StoreStatus {
        try await transaction("reading the versions that need a look") { [self] db in
            let checkpoints = try await db.query(
                PostgresQuery(
                    unsafeSQL: "SELECT * FROM checkpoints WHERE id IN (\(RunSummary.unsettledSQL)) ORDER BY id"),
                logger: logger
            ).collect().map { try Self.checkpoint($0) }
            let jobs = try await db.query(
                PostgresQuery(
                    unsafeSQL: "SELECT * FROM jobs WHERE checkpoint_id IN (\(RunSummary.unsettledSQL)) ORDER BY id"),
                logger: logger
            ).collect().map(Self.job)
            let count = try await values(db, "SELECT count(*) FROM results", as: Int64.self).first ?? 0
            return StoreStatus(checkpoints: checkpoints, jobs: jobs, results: Int(count))
        }
    }

    public func runs(named: String?) async throws(StoreError) -> [RunSummary] {
        var bindings = PostgresBindings()
        if let named { bindings.append(named) }
        let binds = bindings
        let name = named == nil ? nil : "$1"
        return try await transaction("summarising the runs") { [self] db in
            var versions: [(run: String, folder: String, state: String, count: Int, newestStep: Int?, changed: Date?)] =
                []
            for try await (run, folder, state, count, newest, changed) in try await db.query(
                PostgresQuery(unsafeSQL: RunSummary.versionsSQL(named: name), binds: binds), logger: logger
            ).decode((String, String, String, Int64, Int64?, Date?).self) {
                versions.append((run, folder, state, Int(count), newest.map(Int.init), changed))
            }
            var jobs: [(run: String, state: String, count: Int, done: Int, changed: Date?)] = []
            for try await (run, state, count, done, changed) in try await db.query(
                PostgresQuery(unsafeSQL: RunSummary.jobsSQL(named: name), binds: binds), logger: logger
            ).decode((String, String, Int64, Int64, Date?).self) {
                jobs.append((run, state, Int(count), Int(done), changed))
            }
            return RunSummary.assemble(versions: versions, jobs: jobs)
        }
    }

    public func results(run: String?, checkpoint: Int64?) async throws(StoreError) -> [ResultRow] {
        try await transaction("reading results") { [self] db in
            var bindings = PostgresBindings()
            var conditions: [String] = []
            if let run {
                bindings.append(run)
                conditions.append("c.run = $\(bindings.count)")
            }
            if let checkpoint {
                bindings.append(checkpoint)
                conditions.append("c.id = $\(bindings.count)")
            }
            let rows = try await db.query(
                PostgresQuery(unsafeSQL: ResultSQL.listing(conditions), binds: bindings), logger: logger)
            var seen = Set<String>()
            var listed: [ResultRow] = []
            // Decoded as they arrive: a store's every result is never held twice (raw and decoded).
            for try await row in rows {
                let r = row.makeRandomAccess()
                let checkpointID = try r["checkpoint_id"].decode(Int64.self)
                let result = try Self.result(row)
                guard seen.insert("\(checkpointID)|\(result.key)").inserted else { continue }
                let state = try r["checkpoint_state"].decode(String.self)
                listed.append(
                    ResultRow(
                        checkpointID: checkpointID, run: try r["checkpoint_run"].decode(String.self),
                        checkpoint: try r["checkpoint_path"].decode(String.self),
                        step: try r["checkpoint_step"].decode(Int64?.self).map(Int.init),
                        checkpointState: try StoreJSON.known(
                            CheckpointState(rawValue: state), "checkpoint state '\(state)' (checkpoint \(checkpointID))"
                        ),
                        settingsHash: try r["settings_hash"].decode(String.self), result: result))
            }
            return listed.sorted(by: ResultRow.listingOrder)
        }
    }
}
