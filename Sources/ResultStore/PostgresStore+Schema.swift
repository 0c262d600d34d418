import Foundation
import Logging
import PostgresNIO

extension PostgresStore {
    // MARK: Schema

    /// Migrations by name, in order; each runs once in its own transaction.
    static let migrations: [(name: String, sql: String)] = [
        (
            "v1: runs, checkpoint versions, jobs with leases, results, workers",
            """
            CREATE TABLE checkpoints(
                id BIGSERIAL PRIMARY KEY, run TEXT NOT NULL, run_folder TEXT NOT NULL, path TEXT NOT NULL,
                step BIGINT, scheme TEXT NOT NULL, size BIGINT NOT NULL, modified DOUBLE PRECISION NOT NULL,
                content_hash TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN
                    ('current', 'incomplete', 'invalid', 'unreadable', 'replaced', 'gone', 'overwritten')),
                reason TEXT, discovered TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
                updated TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(), snapshot TEXT,
                UNIQUE(path, content_hash));
            CREATE INDEX checkpoints_by_folder ON checkpoints(run_folder);
            CREATE INDEX checkpoints_by_run ON checkpoints(run);
            CREATE INDEX checkpoints_by_path ON checkpoints(path);
            CREATE TABLE jobs(
                id BIGSERIAL PRIMARY KEY, checkpoint_id BIGINT NOT NULL REFERENCES checkpoints(id) ON DELETE CASCADE,
                settings TEXT NOT NULL, settings_hash TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN
                    ('pending', 'running', 'done', 'failed', 'replaced', 'gone', 'cancelled')),
                done INTEGER NOT NULL DEFAULT 0, planned INTEGER NOT NULL DEFAULT 0,
                attempts INTEGER NOT NULL DEFAULT 0, not_before TIMESTAMPTZ, error TEXT,
                created TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
                updated TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
                worker TEXT, attempt INTEGER NOT NULL DEFAULT 0, lease_until TIMESTAMPTZ,
                CHECK (state <> 'running' OR (worker IS NOT NULL AND lease_until IS NOT NULL)),
                UNIQUE(checkpoint_id, settings_hash));
            CREATE INDEX jobs_unfinished ON jobs(state, checkpoint_id) WHERE state IN ('pending', 'running');
            CREATE INDEX jobs_by_checkpoint ON jobs(checkpoint_id);
            CREATE TABLE results(
                key TEXT PRIMARY KEY, content_hash TEXT NOT NULL, architecture_hash TEXT NOT NULL,
                scoring_hash TEXT NOT NULL, engine_version TEXT NOT NULL, series TEXT NOT NULL,
                length INTEGER NOT NULL,
                outcome TEXT NOT NULL CHECK (outcome IN ('evaluated', 'unsupported', 'skipped')),
                protocol TEXT NOT NULL, perplexity DOUBLE PRECISION, mean_nll DOUBLE PRECISION, tokens BIGINT,
                interval_lower DOUBLE PRECISION, interval_upper DOUBLE PRECISION, reason TEXT,
                memory_estimate BIGINT, seconds DOUBLE PRECISION, started TIMESTAMPTZ NOT NULL,
                finished TIMESTAMPTZ NOT NULL, point TEXT NOT NULL);
            CREATE TABLE job_results(
                job_id BIGINT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
                result_key TEXT NOT NULL REFERENCES results(key),
                PRIMARY KEY(job_id, result_key));
            CREATE TABLE workers(
                id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, roles TEXT NOT NULL, job BIGINT,
                started TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
                heartbeat TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp());
            CREATE INDEX workers_by_heartbeat ON workers(heartbeat);
            """
        ),
        (
            "v2: the queue's order stored in an index",
            // A claim reads the first row of `jobs_queue` instead of ranking every version (QueueSQL).
            (["ALTER TABLE jobs ADD COLUMN rank INTEGER NOT NULL DEFAULT 0"] + QueueSQL.indexes + [QueueSQL.rerankAll])
                .joined(separator: ";\n")
        ),
        ("v3: passkey jobs queued after perplexity jobs", QueueSQL.stages.joined(separator: ";\n")),
    ]

    /// The advisory lock key migrations run under (any constant no other program uses: "extrapol" in ASCII).
    static let migrationLock: Int64 = 0x6578_7472_6170_6F6C

    /// Applies the migrations this database lacks (`writing`), or refuses a schema newer than this version.
    static func prepare(_ client: PostgresClient, writing: Bool, address: PostgresAddress, logger: Logger) async throws
    {
        try await client.withConnection { connection in
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS extrapolate_migrations(name TEXT PRIMARY KEY, applied TIMESTAMPTZ NOT NULL DEFAULT now())",
                logger: logger)
            if writing {
                try await connection.query("SELECT pg_advisory_lock(\(migrationLock))", logger: logger)
            }
            do {
                var applied = Set<String>()
                for try await name in try await connection.query(
                    "SELECT name FROM extrapolate_migrations", logger: logger
                ).decode(String.self) {
                    applied.insert(name)
                }
                let known = Set(migrations.map(\.name))
                if let unknown = applied.subtracting(known).sorted().first {
                    throw StoreError.cannotOpen(
                        path: address.description,
                        reason: "written by a newer Extrapolate (migration '\(unknown)'); upgrade this one")
                }
                if writing {
                    for migration in migrations where !applied.contains(migration.name) {
                        try await connection.withTransaction(logger: logger) { transaction in
                            // One statement at a time: the extended protocol takes one per query.
                            for statement in migration.sql.split(separator: ";")
                            where !statement.allSatisfy(\.isWhitespace) {
                                try await transaction.query(PostgresQuery(unsafeSQL: String(statement)), logger: logger)
                            }
                            try await transaction.query(
                                "INSERT INTO extrapolate_migrations(name) VALUES (\(migration.name))", logger: logger)
                        }
                        logger.notice("store migrated", metadata: ["migration": "\(migration.name)"])
                    }
                } else if applied.isEmpty {
                    throw StoreError.cannotOpen(
                        path: address.description,
                        reason: "no Extrapolate store here yet; `extrapolate watch --store URL` creates it")
                } else if applied.count < migrations.count {
                    throw StoreError.cannotOpen(
                        path: address.description,
                        reason: "written by an older Extrapolate; start a daemon or worker of this version on it once "
                            + "to upgrade it (its migrations keep every result)")
                }
            } catch {
                // The migration's own error is the one to report; session locks also end with the connection.
                if writing { _ = try? await connection.query("SELECT pg_advisory_unlock_all()", logger: logger) }
                throw error
            }
            if writing { try await connection.query("SELECT pg_advisory_unlock_all()", logger: logger) }
        }
    }
}
