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
        return migrator
    }
}
