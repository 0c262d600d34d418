import Foundation
import GRDB

/// What pruning a run removed (or would remove).
public struct PruneCount: Sendable, Hashable, Codable {
    /// Checkpoint versions, jobs, and results no other run's job uses any more.
    public var versions: Int
    public var jobs: Int
    public var results: Int
}

extension SQLiteStore {
    /// Removes run `run` from the store: its checkpoint versions, their jobs and links, and the results no other job
    /// links (a result shared with a copy in another run stays). With `dryRun`, counts only.
    /// - Throws: `StoreError.missing` when the store has no such run.
    public func prune(run: String, dryRun: Bool = false) throws(StoreError) -> PruneCount {
        try writeNow("pruning run \(run)") { db in
            let versions = try Int64.fetchAll(db, sql: "SELECT id FROM checkpoints WHERE run = ?", arguments: [run])
            guard !versions.isEmpty else { throw StoreError.missing("run '\(run)'") }
            let jobs = "SELECT id FROM jobs WHERE checkpoint_id IN (SELECT id FROM checkpoints WHERE run = ?)"
            let orphaned = """
                SELECT DISTINCT result_key FROM job_results WHERE job_id IN (\(jobs)) AND result_key NOT IN (
                    SELECT result_key FROM job_results WHERE job_id NOT IN (\(jobs)))
                """
            let keys = try String.fetchAll(db, sql: orphaned, arguments: [run, run])
            let count = PruneCount(
                versions: versions.count,
                jobs: try Int.fetchOne(db, sql: "SELECT count(*) FROM (\(jobs))", arguments: [run]) ?? 0,
                results: keys.count)
            if dryRun { return count }
            // Links, then jobs, then versions, then the results nothing links any more (foreign keys in that order).
            try db.execute(sql: "DELETE FROM job_results WHERE job_id IN (\(jobs))", arguments: [run])
            try db.execute(sql: "DELETE FROM jobs WHERE id IN (\(jobs))", arguments: [run])
            try db.execute(sql: "DELETE FROM checkpoints WHERE run = ?", arguments: [run])
            for key in keys { try db.execute(sql: "DELETE FROM results WHERE key = ?", arguments: [key]) }
            // Ranks count versions of the same run folder only; set them again all the same (a prune is rare).
            try db.execute(sql: QueueSQL.rerankAll)
            return count
        }
    }
}
