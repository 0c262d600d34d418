import Foundation
import GRDB
import GRDBSQLite
import PostgresNIO

// How much work finding the next job takes, measured by each database itself: the tests keep it independent of how
// many versions and jobs a store holds (a claim reads the first row of an index), without timing anything.

extension SQLiteStore {
    /// SQLite's virtual-machine steps for the query that finds the next job: it grows with every row the query
    /// reads, and stays flat when the query reads only the first ready row of `jobs_queue`.
    func nextJobQuerySteps() async throws -> Int {
        let now = clock().timeIntervalSince1970
        return try await pool.read { db in
            let statement = try db.makeStatement(sql: "\(QueueSQL.next(now: "?", indexedBy: true)) LIMIT 1")
            statement.arguments = [now]
            _ = try Int64.fetchOne(statement)
            return Int(sqlite3_stmt_status(statement.sqliteStatement, SQLITE_STMTSTATUS_VM_STEP, 0))
        }
    }
}

extension PostgresStore {
    /// The rows every node of the plan of the query that finds the next job produced (EXPLAIN ANALYZE, summed over
    /// loops): flat when it reads only the first ready row of `jobs_queue`.
    func nextJobQueryRows() async throws -> Int {
        let rows = try await pool.current.query(
            PostgresQuery(unsafeSQL: "EXPLAIN (ANALYZE, FORMAT JSON) \(QueueSQL.next(now: "now()")) LIMIT 1"),
            logger: logger
        ).collect()
        guard let row = rows.first else { return -1 }
        let text = try row.decode(String.self)
        let parsed = try JSONSerialization.jsonObject(with: Data(text.utf8))
        guard let plans = parsed as? [[String: Any]], let plan = plans.first?["Plan"] as? [String: Any] else {
            return -1
        }
        func produced(_ node: [String: Any]) -> Int {
            let own = ((node["Actual Rows"] as? Int) ?? 0) * ((node["Actual Loops"] as? Int) ?? 1)
            return own + ((node["Plans"] as? [[String: Any]]) ?? []).map(produced).reduce(0, +)
        }
        return produced(plan)
    }
}
