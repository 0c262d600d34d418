import Foundation

/// One run at a glance (`ResultStore.runs`).
public struct RunSummary: Sendable, Hashable, Codable {
    public var name: String
    /// Its run folder (the first, when folders in several watched trees share the name).
    public var folder: String
    /// Versions by `CheckpointState.rawValue`, jobs by `JobState.rawValue`.
    public var checkpoints: [String: Int]
    public var jobs: [String: Int]
    /// The highest step of a current version.
    public var newestStep: Int?
    /// Results recorded by its jobs (a result one job reused from another counts for each).
    public var results: Int
    /// The newest `updated` of its versions and jobs.
    public var changed: Date?

    public init(
        name: String, folder: String, checkpoints: [String: Int] = [:], jobs: [String: Int] = [:],
        newestStep: Int? = nil, results: Int = 0, changed: Date? = nil
    ) {
        self.name = name
        self.folder = folder
        self.checkpoints = checkpoints
        self.jobs = jobs
        self.newestStep = newestStep
        self.results = results
        self.changed = changed
    }

    /// Changes whenever a version, a job or a result of the run does (a result is written with its job's
    /// progress): what a cache of the run's results is kept under.
    public var stamp: String {
        let versions = checkpoints.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let queue = jobs.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return "\(changed?.timeIntervalSince1970 ?? 0)|\(versions.joined(separator: ","))|"
            + "\(queue.joined(separator: ","))|\(results)"
    }

    /// Summaries from the two grouped queries every store runs: versions by (run, state) and jobs by (run, state).
    static func assemble(
        versions: [(run: String, folder: String, state: String, count: Int, newestStep: Int?, changed: Date?)],
        jobs: [(run: String, state: String, count: Int, done: Int, changed: Date?)]
    ) -> [RunSummary] {
        var runs: [String: RunSummary] = [:]
        for row in versions {
            var run = runs[row.run] ?? RunSummary(name: row.run, folder: row.folder)
            run.folder = min(run.folder, row.folder)
            run.checkpoints[row.state, default: 0] += row.count
            if let step = row.newestStep { run.newestStep = max(run.newestStep ?? step, step) }
            run.changed = [run.changed, row.changed].compactMap { $0 }.max()
            runs[row.run] = run
        }
        for row in jobs {
            guard var run = runs[row.run] else { continue }
            run.jobs[row.state, default: 0] += row.count
            run.results += row.done
            run.changed = [run.changed, row.changed].compactMap { $0 }.max()
            runs[row.run] = run
        }
        return runs.values.sorted { $0.name < $1.name }
    }

    /// The summaries of the runs in `status` (what `ResultStore.runs` counts in SQL).
    static func of(_ status: StoreStatus) -> [RunSummary] {
        let versions = Dictionary(grouping: status.checkpoints) { "\($0.run)\u{0}\($0.state.rawValue)" }.values.map {
            group in
            let first = group[0]
            return (
                run: first.run, folder: group.map(\.runFolder).min() ?? first.runFolder, state: first.state.rawValue,
                count: group.count, newestStep: first.state == .current ? group.compactMap(\.step).max() : nil,
                changed: group.map(\.updated).max()
            )
        }
        let runOf = Dictionary(uniqueKeysWithValues: status.checkpoints.map { ($0.id, $0.run) })
        let jobs = Dictionary(grouping: status.jobs) { "\(runOf[$0.checkpointID] ?? "")\u{0}\($0.state.rawValue)" }
            .values
            .map { group in
                (
                    run: runOf[group[0].checkpointID] ?? "", state: group[0].state.rawValue, count: group.count,
                    done: group.map(\.done).reduce(0, +), changed: group.map(\.updated).max()
                )
            }
        return assemble(versions: versions, jobs: jobs)
    }

    /// The ids of the versions `status` lists by default (`StoreStatus.unsettled` in SQL): those whose latest job is not done (or that have none),
    /// and those that cannot be evaluated for a reason to read (incomplete, invalid, unreadable, overwritten).
    static let unsettledSQL = """
        SELECT id FROM (
            SELECT c.id, c.state, c.snapshot,
                (SELECT j.state FROM jobs j WHERE j.checkpoint_id = c.id ORDER BY j.id DESC LIMIT 1) AS job_state
            FROM checkpoints c) v
        WHERE CASE WHEN v.state = 'current' OR (v.state = 'replaced' AND v.snapshot IS NOT NULL)
            THEN COALESCE(v.job_state, 'pending') NOT IN ('done', 'cancelled')
            ELSE COALESCE(v.job_state, '') <> 'done' AND v.state NOT IN ('replaced', 'gone') END
        """

    /// The grouped queries behind `assemble`, the same on SQLite and PostgreSQL; `named` is the placeholder of one
    /// run's name, or `nil` for every run.
    static func versionsSQL(named: String?) -> String {
        """
        SELECT run, min(run_folder), state, count(*), max(CASE WHEN state = 'current' THEN step END), max(updated)
        FROM checkpoints \(named.map { "WHERE run = \($0) " } ?? "")GROUP BY run, state
        """
    }

    static func jobsSQL(named: String?) -> String {
        """
        SELECT c.run, j.state, count(*), sum(j.done), max(j.updated)
        FROM jobs j JOIN checkpoints c ON c.id = j.checkpoint_id \(named.map { "WHERE c.run = \($0) " } ?? "")
        GROUP BY c.run, j.state
        """
    }
}

/// The results table's SQL both database stores share.
enum ResultSQL {
    /// The columns a result is inserted with, in the order of their values.
    static let columns = """
        key, content_hash, architecture_hash, scoring_hash, engine_version, series, length, outcome, protocol,
        perplexity, mean_nll, tokens, interval_lower, interval_upper, reason, memory_estimate, seconds, started,
        finished, point
        """

    /// A result is written once: only one skipped for memory is replaced (by its evaluation).
    static let replacingSkipped = """
        ON CONFLICT (key) DO UPDATE SET outcome = excluded.outcome, perplexity = excluded.perplexity,
            mean_nll = excluded.mean_nll, tokens = excluded.tokens,
            interval_lower = excluded.interval_lower, interval_upper = excluded.interval_upper,
            reason = excluded.reason, memory_estimate = excluded.memory_estimate,
            seconds = excluded.seconds, started = excluded.started, finished = excluded.finished,
            point = excluded.point
        WHERE results.outcome = 'skipped'
        """

    /// Every result listed under each version whose jobs produced or reused it, with the version's run, path, step
    /// and state; `conditions` (on `c`, the version) are `AND`-ed. Rows of one (version, key) come once per job
    /// linking it, the first job's first (`ResultRow` keeps that one).
    static func listing(_ conditions: [String]) -> String {
        """
        SELECT c.id AS checkpoint_id, c.run AS checkpoint_run, c.path AS checkpoint_path,
            c.step AS checkpoint_step, c.state AS checkpoint_state, j.settings_hash AS settings_hash, x.*
        FROM checkpoints c JOIN jobs j ON j.checkpoint_id = c.id JOIN job_results l ON l.job_id = j.id
        JOIN results x ON x.key = l.result_key
        \(conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND "))
        ORDER BY j.id, l.result_key
        """
    }
}
