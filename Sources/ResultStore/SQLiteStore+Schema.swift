import GRDB

// The store's schema as named migrations, applied in order when a writer opens the store; a reader refuses a store
// written by a newer Extrapolate (a migration it does not know).
extension SQLiteStore {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: runs, checkpoint versions, jobs, results") { db in
            try db.execute(
                sql: """
                    CREATE TABLE checkpoints(
                        id INTEGER PRIMARY KEY, run TEXT NOT NULL, run_folder TEXT NOT NULL, path TEXT NOT NULL,
                        step INTEGER, scheme TEXT NOT NULL, size INTEGER NOT NULL, modified REAL NOT NULL,
                        content_hash TEXT NOT NULL, state TEXT NOT NULL, reason TEXT,
                        discovered REAL NOT NULL, updated REAL NOT NULL,
                        UNIQUE(path, content_hash));
                    CREATE INDEX checkpoints_by_folder ON checkpoints(run_folder);
                    CREATE TABLE jobs(
                        id INTEGER PRIMARY KEY, checkpoint_id INTEGER NOT NULL REFERENCES checkpoints(id),
                        settings TEXT NOT NULL, settings_hash TEXT NOT NULL, state TEXT NOT NULL,
                        done INTEGER NOT NULL DEFAULT 0, planned INTEGER NOT NULL DEFAULT 0,
                        attempts INTEGER NOT NULL DEFAULT 0, not_before REAL, error TEXT,
                        created REAL NOT NULL, updated REAL NOT NULL,
                        UNIQUE(checkpoint_id, settings_hash));
                    CREATE INDEX jobs_by_state ON jobs(state);
                    CREATE TABLE results(
                        key TEXT PRIMARY KEY, content_hash TEXT NOT NULL, architecture_hash TEXT NOT NULL,
                        scoring_hash TEXT NOT NULL, engine_version TEXT NOT NULL, series TEXT NOT NULL,
                        length INTEGER NOT NULL, outcome TEXT NOT NULL, protocol TEXT NOT NULL,
                        perplexity REAL, mean_nll REAL, tokens INTEGER, interval_lower REAL, interval_upper REAL,
                        reason TEXT, memory_estimate INTEGER, seconds REAL, started REAL NOT NULL,
                        finished REAL NOT NULL, point TEXT NOT NULL);
                    CREATE TABLE job_results(
                        job_id INTEGER NOT NULL REFERENCES jobs(id), result_key TEXT NOT NULL REFERENCES results(key),
                        PRIMARY KEY(job_id, result_key));
                    """)
        }
        migrator.registerMigration("v2: snapshots of checkpoints rewritten in place") { db in
            try db.execute(sql: "ALTER TABLE checkpoints ADD COLUMN snapshot TEXT")
        }
        migrator.registerMigration("v3: leases, workers, and CHECKs on every state") { db in
            // SQLite adds a CHECK only to a new table: each table is rebuilt with its constraints and copied over.
            try db.execute(
                sql: """
                    CREATE TABLE checkpoints_v3(
                        id INTEGER PRIMARY KEY, run TEXT NOT NULL, run_folder TEXT NOT NULL, path TEXT NOT NULL,
                        step INTEGER, scheme TEXT NOT NULL, size INTEGER NOT NULL, modified REAL NOT NULL,
                        content_hash TEXT NOT NULL,
                        state TEXT NOT NULL CHECK (state IN
                            ('current', 'incomplete', 'invalid', 'unreadable', 'replaced', 'gone', 'overwritten')),
                        reason TEXT, discovered REAL NOT NULL, updated REAL NOT NULL, snapshot TEXT,
                        UNIQUE(path, content_hash));
                    INSERT INTO checkpoints_v3 SELECT id, run, run_folder, path, step, scheme, size, modified,
                        content_hash, state, reason, discovered, updated, snapshot FROM checkpoints;
                    DROP TABLE checkpoints;
                    ALTER TABLE checkpoints_v3 RENAME TO checkpoints;
                    CREATE INDEX checkpoints_by_folder ON checkpoints(run_folder);
                    CREATE INDEX checkpoints_by_run ON checkpoints(run);

                    CREATE TABLE jobs_v3(
                        id INTEGER PRIMARY KEY, checkpoint_id INTEGER NOT NULL REFERENCES checkpoints(id),
                        settings TEXT NOT NULL, settings_hash TEXT NOT NULL,
                        state TEXT NOT NULL CHECK (state IN
                            ('pending', 'running', 'done', 'failed', 'replaced', 'gone', 'cancelled')),
                        done INTEGER NOT NULL DEFAULT 0, planned INTEGER NOT NULL DEFAULT 0,
                        attempts INTEGER NOT NULL DEFAULT 0, not_before REAL, error TEXT,
                        created REAL NOT NULL, updated REAL NOT NULL,
                        worker TEXT, attempt INTEGER NOT NULL DEFAULT 0, lease_until REAL,
                        CHECK (state <> 'running' OR (worker IS NOT NULL AND lease_until IS NOT NULL)),
                        UNIQUE(checkpoint_id, settings_hash));
                    INSERT INTO jobs_v3(id, checkpoint_id, settings, settings_hash, state, done, planned, attempts,
                        not_before, error, created, updated)
                        SELECT id, checkpoint_id, settings, settings_hash,
                            CASE state WHEN 'running' THEN 'pending' ELSE state END,
                            done, planned, attempts, not_before, error, created, updated FROM jobs;
                    DROP TABLE jobs;
                    ALTER TABLE jobs_v3 RENAME TO jobs;
                    CREATE INDEX jobs_by_state ON jobs(state);
                    CREATE INDEX jobs_by_checkpoint ON jobs(checkpoint_id);

                    CREATE TABLE results_v3(
                        key TEXT PRIMARY KEY, content_hash TEXT NOT NULL, architecture_hash TEXT NOT NULL,
                        scoring_hash TEXT NOT NULL, engine_version TEXT NOT NULL, series TEXT NOT NULL,
                        length INTEGER NOT NULL,
                        outcome TEXT NOT NULL CHECK (outcome IN ('evaluated', 'unsupported', 'skipped')),
                        protocol TEXT NOT NULL,
                        perplexity REAL, mean_nll REAL, tokens INTEGER, interval_lower REAL, interval_upper REAL,
                        reason TEXT, memory_estimate INTEGER, seconds REAL, started REAL NOT NULL,
                        finished REAL NOT NULL, point TEXT NOT NULL);
                    INSERT INTO results_v3 SELECT * FROM results;
                    DROP TABLE results;
                    ALTER TABLE results_v3 RENAME TO results;

                    CREATE TABLE workers(
                        id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, roles TEXT NOT NULL,
                        job INTEGER, started REAL NOT NULL, heartbeat REAL NOT NULL);
                    """)
        }
        migrator.registerMigration("v4: the queue's order stored in an index") { db in
            // A claim reads the first row of `jobs_queue` instead of ranking every version (QueueSQL).
            try db.execute(sql: "ALTER TABLE jobs ADD COLUMN rank INTEGER NOT NULL DEFAULT 0")
            // Without statistics SQLite's planner took the index on the state for every statement naming one, and
            // then read every unfinished job; the few statements that filter on the state alone scan 10,000 rows
            // in about a millisecond.
            try db.execute(sql: "DROP INDEX jobs_by_state")
            for index in QueueSQL.indexes { try db.execute(sql: index) }
            try db.execute(sql: QueueSQL.rerankAll)
        }
        migrator.registerMigration("v5: passkey jobs queued after perplexity jobs") { db in
            for statement in QueueSQL.stages { try db.execute(sql: statement) }
        }
        return migrator
    }
}
