import Evaluation
import Foundation
import Hummingbird
import Reports
import ResultStore
import Service

/// What the routes read and act on: the store, the daemon (absent when only serving a store), the metrics.
public final class ServerState: Sendable {
    public let store: any ResultStore
    public let daemon: Daemon?
    public let metrics: ServerMetrics
    public let configuration: ServerConfiguration

    public init(store: any ResultStore, daemon: Daemon?, metrics: ServerMetrics, configuration: ServerConfiguration) {
        self.store = store
        self.daemon = daemon
        self.metrics = metrics
        self.configuration = configuration
    }

    private let cache = RunCache()
    private let answers = AnswerCache()

    /// The answer to `request` (its path and query), made by `make` once per state of the store and kept until the
    /// store's stamp changes: the page and its readers ask for the same few answers over and over between results.
    func answer(to request: Request, type: String = JSONBody.json, make: () async throws -> String) async throws
        -> Response
    {
        let stamp = try await store.counts().stamp
        let key = request.uri.description
        if let text = answers.text(for: key, stamp: stamp) { return JSONBody.text(text, type: type) }
        let text = try await make()
        answers.keep(text, for: key, stamp: stamp)
        return JSONBody.text(text, type: type)
    }
    private let runsAtStamp = LockedValue<(stamp: String, summaries: [RunSummary])?>(nil)

    /// Each run at a glance, from the store's grouped counts (no job or result decoded), kept until the store's stamp
    /// changes: the page and every route that lists runs ask for them, most often of an unchanged store.
    func summaries() async throws -> [RunSummary] {
        let stamp = try await store.counts().stamp
        if let kept = runsAtStamp.value, kept.stamp == stamp { return kept.summaries }
        // Read after the stamp: a change in between is newer than the stamp it is kept under, and the next
        // request's stamp differs, so it is read again.
        let summaries = try await store.runs()
        runsAtStamp.value = (stamp, summaries)
        return summaries
    }

    /// The stored results of run `run` as the reports list them (with per-window detail); decoding them is the costly
    /// part of a request, so they are kept until the run changes (a few runs at a time).
    func rows(run: String) async throws -> [StoredResultsReport.Row] {
        guard let summary = try await store.runs(named: run).first else { return [] }
        return try await rows(of: summary)
    }

    private func rows(of summary: RunSummary) async throws -> [StoredResultsReport.Row] {
        if let kept = cache.rows(of: summary) { return kept }
        let rows = try await store.results(run: summary.name).map(StoredResultsReport.Row.init)
        cache.keep(rows, of: summary)
        return rows
    }

    /// Every stored result, run by run: an export, as large as the store.
    func allRows() async throws -> [StoredResultsReport.Row] {
        var all: [StoredResultsReport.Row] = []
        for summary in try await summaries() { all += try await rows(of: summary) }
        return all
    }

    /// The results of one checkpoint version (its positions, a comparison), read for the request.
    func rows(checkpoint: Int64) async throws -> [StoredResultsReport.Row] {
        try await store.results(run: nil, checkpoint: checkpoint).map(StoredResultsReport.Row.init)
    }

    /// The curves of run `run`, kept until it changes.
    func curves(run: String) async throws -> [ExtrapolationCurve] {
        guard let summary = try await store.runs(named: run).first else { return [] }
        return try await curves(of: summary)
    }

    private func curves(of summary: RunSummary) async throws -> [ExtrapolationCurve] {
        if let kept = cache.curves(of: summary) { return kept }
        let curves = Extrapolation.curves(try await rows(of: summary))
        cache.keep(curves, of: summary)
        return curves
    }

    /// Every run's curves (what the overview, the alerts and `/metrics` need): each run's are kept until it changes,
    /// so a result recorded reads one run again, not the store.
    func curves() async throws -> [ExtrapolationCurve] {
        let summaries = try await summaries()
        cache.forget(runsOtherThan: Set(summaries.map(\.name)))
        var all: [ExtrapolationCurve] = []
        // Runs come sorted by name, and each run's curves in `Extrapolation`'s order: so is the whole.
        for summary in summaries { all += try await curves(of: summary) }
        return all
    }

    /// What changes whenever a result, a checkpoint or a job does (a result is written with its job's progress).
    func stamp() async throws -> (value: String, results: Int) {
        let counts = try await store.counts()
        return (counts.stamp, counts.results)
    }

    /// The perplexity alerts of `curves`, then the passkey alerts of every run.
    func alerts(_ curves: [ExtrapolationCurve]) async throws -> [Alert] {
        Extrapolation.alerts(curves, thresholds: configuration.thresholds)
            + StoredPasskeyReport(try await passkeyRows()).alerts(threshold: configuration.thresholds.passkeyDrop)
    }

    /// The passkey rows of run `run` (kept with its rows until it changes).
    func passkeyRows(run: String) async throws -> [StoredResultsReport.Row] {
        guard let summary = try await store.runs(named: run).first else { return [] }
        return try await passkeyRows(of: summary)
    }

    private func passkeyRows(of summary: RunSummary) async throws -> [StoredResultsReport.Row] {
        if let kept = cache.passkey(of: summary) { return kept }
        // Runs without passkey jobs (most) are known from their summary's stamp without decoding a row once kept.
        let rows = try await rows(of: summary).filter { $0.passkey != nil }
        cache.keep(passkey: rows, of: summary)
        return rows
    }

    /// Every run's passkey rows.
    func passkeyRows() async throws -> [StoredResultsReport.Row] {
        var all: [StoredResultsReport.Row] = []
        for summary in try await summaries() { all += try await passkeyRows(of: summary) }
        return all
    }
}

/// The JSON API under `/api` (Docs/http-api.yaml).
struct APIController {
    typealias Context = BasicRequestContext

    let state: ServerState

    var routes: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.get("runs", use: runs)
        routes.get("runs/:run/checkpoints", use: checkpoints)
        routes.get("results", use: results)
        routes.get("curves", use: curves)
        routes.get("positions", use: positions)
        routes.get("compare", use: compare)
        routes.get("queue", use: queue)
        routes.get("workers", use: workers)
        routes.get("failures", use: failures)
        routes.get("alerts", use: alerts)
        routes.get("version", use: version)
        routes.post("checkpoints/:id/requeue", use: requeue)
        routes.post("worker", use: worker)
        return routes
    }

    // MARK: Reading

    struct RunEntry: Codable, Sendable {
        var name: String
        var folder: String
        /// Checkpoint versions by state.
        var checkpoints: [String: Int]
        /// Jobs by state.
        var jobs: [String: Int]
        var newestStep: Int?
        var results: Int
    }

    @Sendable func runs(_ request: Request, context: Context) async throws -> Response {
        let runs = try await state.summaries().map {
            RunEntry(
                name: $0.name, folder: $0.folder, checkpoints: $0.checkpoints, jobs: $0.jobs, newestStep: $0.newestStep,
                results: $0.results)
        }
        struct Body: Codable { var runs: [RunEntry] }
        return try JSONBody.response(Body(runs: runs))
    }

    struct CheckpointEntry: Codable, Sendable {
        struct Job: Codable, Sendable {
            var id: Int64
            /// `perplexity` or `passkey`.
            var task: EvaluationTask
            var state: JobState
            var done: Int
            var planned: Int
            var attempts: Int
            var notBefore: Date?
            var error: String?
            var updated: Date
        }
        var id: Int64
        var path: String
        var step: Int?
        var scheme: String
        var state: CheckpointState
        var reason: String?
        var size: Int
        var discovered: Date
        var updated: Date
        var jobs: [Job]
    }

    @Sendable func checkpoints(_ request: Request, context: Context) async throws -> Response {
        let run = try context.parameters.decoded("run")
        return try await state.answer(to: request) { try await checkpointsAnswer(run: run) }
    }

    private func checkpointsAnswer(run: String) async throws -> String {
        let status = try await state.store.status(run: run)
        let versions = status.checkpoints
        guard !versions.isEmpty else { throw APIError.notFound("no run named '\(run)'; see /api/runs") }
        let jobs = Dictionary(grouping: status.jobs, by: \.checkpointID)
        let entries = versions.sorted { ($0.step ?? -1, $0.id) < ($1.step ?? -1, $1.id) }.map { version in
            CheckpointEntry(
                id: version.id, path: version.path, step: version.step, scheme: version.scheme, state: version.state,
                reason: version.reason, size: version.size, discovered: version.discovered, updated: version.updated,
                jobs: (jobs[version.id] ?? []).map {
                    .init(
                        id: $0.id, task: $0.settings.task, state: $0.state, done: $0.done, planned: $0.planned,
                        attempts: $0.attempts,
                        notBefore: $0.notBefore, error: $0.error, updated: $0.updated)
                })
        }
        struct Body: Codable {
            var run: String
            var checkpoints: [CheckpointEntry]
        }
        return try JSONBody.encoded(Body(run: run, checkpoints: entries))
    }

    /// The filters `/api/results` and `/api/curves` take.
    struct Filter {
        var run: String?
        var checkpoint: Int64?
        var step: Int?
        var length: Int?
        var evaluationProtocol: String?
        var series: String?
        /// `perplexity` (the default) or `passkey`: which results.
        var task: EvaluationTask
        /// Passkey cells at this depth only.
        var depth: Double?

        init(_ request: Request) throws {
            let query = request.uri.queryParameters
            run = query.get("run")
            let taskName = query.get("task") ?? EvaluationTask.perplexity.rawValue
            guard let task = EvaluationTask(rawValue: taskName) else {
                throw APIError.badRequest("task must be perplexity or passkey, not '\(taskName)'")
            }
            self.task = task
            if let text = query.get("depth") {
                guard let value = Double(text), (0...100).contains(value) else {
                    throw APIError.badRequest("depth must be a per cent from 0 to 100, not '\(text)'")
                }
                depth = value
            }
            checkpoint = try Self.number(query.get("checkpoint"), "checkpoint")
            step = try Self.number(query.get("step"), "step")
            length = try Self.number(query.get("length"), "length")
            evaluationProtocol = query.get("protocol")
            series = query.get("series")
        }

        static func number<T: FixedWidthInteger>(_ text: String?, _ name: String) throws -> T? {
            guard let text else { return nil }
            guard let value = T(text) else {
                throw APIError.badRequest("\(name) must be a whole number, not '\(text)'")
            }
            return value
        }

        /// Whether only `run` (or nothing) filters: the kept curves answer then.
        var isRunOnly: Bool {
            checkpoint == nil && step == nil && length == nil && evaluationProtocol == nil && series == nil
                && task == .perplexity
        }

        /// The rows the other filters narrow: one checkpoint's, one run's, or every run's.
        func rows(_ state: ServerState) async throws -> [StoredResultsReport.Row] {
            if let checkpoint {
                return try await state.rows(checkpoint: checkpoint).filter { run == nil || $0.run == run }
            }
            if let run { return try await state.rows(run: run) }
            return try await state.allRows()
        }

        func keeps(_ row: StoredResultsReport.Row) -> Bool {
            row.task == task && (depth == nil || row.passkey?.depth == depth)
                && (checkpoint == nil || row.checkpointID == checkpoint) && (step == nil || row.step == step)
                && (length == nil || row.length == length)
                && (evaluationProtocol == nil || row.evaluationProtocol == evaluationProtocol)
                && (series == nil || row.series == series)
        }
    }

    @Sendable func results(_ request: Request, context: Context) async throws -> Response {
        let filter = try Filter(request)
        switch request.uri.queryParameters.get("format") ?? "json" {
        case "json":
            return try await state.answer(to: request) {
                // Each result as `results --json` writes it, without the per-window detail (`/api/positions` has
                // the per-position losses).
                struct Body: Codable { var results: [StoredResultsReport.Row] }
                let rows = try await filter.rows(state).filter(filter.keeps)
                return try JSONBody.encoded(
                    Body(
                        results: rows.map { row in
                            var row = row
                            row.result = nil
                            return row
                        }))
            }
        case "csv":
            var response = try await state.answer(to: request, type: "text/csv; charset=utf-8") {
                let rows = try await filter.rows(state).filter(filter.keeps)
                return filter.task == .passkey
                    ? StoredPasskeyReport(rows).csv() : StoredResultsReport(rows: rows).csv()
            }
            let name = filter.task == .passkey ? "passkey.csv" : "results.csv"
            response.headers[.contentDisposition] = "attachment; filename=\"\(name)\""
            return response
        case let other: throw APIError.badRequest("format must be json or csv, not '\(other)'")
        }
    }

    @Sendable func curves(_ request: Request, context: Context) async throws -> Response {
        let filter = try Filter(request)
        return try await state.answer(to: request) { try await curvesAnswer(request, filter: filter) }
    }

    private func curvesAnswer(_ request: Request, filter: Filter) async throws -> String {
        let curves: [ExtrapolationCurve]
        if filter.isRunOnly, let run = filter.run {
            curves = try await state.curves(run: run)
        } else if filter.isRunOnly {
            curves = try await state.curves()
        } else {
            curves = Extrapolation.curves(try await filter.rows(state).filter(filter.keeps))
        }
        let newestOnly = request.uri.queryParameters.get("newest") == "true"
        struct Body: Codable { var curves: [ExtrapolationCurve] }
        return try JSONBody.encoded(Body(curves: newestOnly ? Extrapolation.newest(curves) : curves))
    }

    @Sendable func positions(_ request: Request, context: Context) async throws -> Response {
        guard let id: Int64 = try Filter.number(request.uri.queryParameters.get("checkpoint"), "checkpoint") else {
            throw APIError.badRequest("give ?checkpoint=ID (an id from /api/runs/{run}/checkpoints)")
        }
        let rows = try await state.rows(checkpoint: id).filter { $0.outcome == .evaluated }
        guard !rows.isEmpty else { throw APIError.notFound("no evaluated results for checkpoint \(id)") }
        struct Series: Codable {
            var series: String
            var length: Int
            var multiple: Double
            var buckets: [PositionBucket]
        }
        struct Body: Codable {
            var checkpointID: Int64
            var positions: [Series]
        }
        let series = rows.compactMap { row in
            row.result.map {
                Series(series: row.series, length: row.length, multiple: row.multiple, buckets: $0.positions)
            }
        }
        return try JSONBody.response(Body(checkpointID: id, positions: series))
    }

    /// The paired bootstrap of two checkpoints' stored results on the same windows (as `extrapolate compare`).
    @Sendable func compare(_ request: Request, context: Context) async throws -> Response {
        let query = request.uri.queryParameters
        guard let a: Int64 = try Filter.number(query.get("a"), "a"),
            let b: Int64 = try Filter.number(query.get("b"), "b")
        else { throw APIError.badRequest("give ?a=ID&b=ID (checkpoint ids), and optionally length and series") }
        let length: Int? = try Filter.number(query.get("length"), "length")
        let evaluated = { (id: Int64) in
            try await state.rows(checkpoint: id).filter { $0.outcome == .evaluated && $0.result != nil }
        }
        let comparisons = try PairedResults.compare(
            try await evaluated(a), try await evaluated(b), length: length,
            series: query.get("series"))
        guard !comparisons.isEmpty else {
            throw APIError.notFound(
                "checkpoints \(a) and \(b) have no evaluated length in common on the same data and settings")
        }
        struct Body: Codable {
            var a: Int64
            var b: Int64
            var comparisons: [PairedResults.Entry]
        }
        return try JSONBody.response(Body(a: a, b: b, comparisons: comparisons))
    }

    struct QueueEntry: Codable, Sendable {
        var id: Int64
        var checkpointID: Int64
        var run: String
        var checkpoint: String
        var step: Int?
        var state: JobState
        var done: Int
        var planned: Int
        var attempts: Int
        var notBefore: Date?
        var error: String?
    }

    @Sendable func queue(_ request: Request, context: Context) async throws -> Response {
        let status = try await state.store.status()
        let versions = Dictionary(uniqueKeysWithValues: status.checkpoints.map { ($0.id, $0) })
        let jobs = status.jobs.filter { $0.state == .pending || $0.state == .running }.compactMap {
            job -> QueueEntry? in
            guard let version = versions[job.checkpointID] else { return nil }
            return QueueEntry(
                id: job.id, checkpointID: version.id, run: version.run, checkpoint: version.path, step: version.step,
                state: job.state, done: job.done, planned: job.planned, attempts: job.attempts,
                notBefore: job.notBefore, error: job.error)
        }
        struct Body: Codable {
            var paused: Bool
            var jobs: [QueueEntry]
        }
        return try JSONBody.response(Body(paused: state.daemon?.isPaused ?? false, jobs: jobs))
    }

    struct WorkerEntry: Codable, Sendable {
        var id: String
        var host: String
        var pid: Int32
        var roles: [String]
        var job: Int64?
        var started: Date
        var heartbeat: Date
        /// Seconds since its last heartbeat, by the store's clock.
        var silentSeconds: Double
    }

    @Sendable func workers(_ request: Request, context: Context) async throws -> Response {
        let now = Date()
        let workers = try await state.store.workers(withinSeconds: WorkerListing.window).map {
            WorkerEntry(
                id: $0.info.id, host: $0.info.host, pid: $0.info.pid, roles: $0.info.roles, job: $0.info.job,
                started: $0.started, heartbeat: $0.heartbeat, silentSeconds: max(now.timeIntervalSince($0.heartbeat), 0)
            )
        }
        struct Body: Codable {
            var window: Double
            var workers: [WorkerEntry]
        }
        return try JSONBody.response(Body(window: WorkerListing.window, workers: workers))
    }

    struct Failure: Codable, Sendable {
        var checkpointID: Int64
        var run: String
        var checkpoint: String
        var step: Int?
        /// `job` (its evaluation failed), or the checkpoint's state: `invalid`, `unreadable`, `incomplete`.
        var kind: String
        var error: String
        var attempts: Int?
        var updated: Date
    }

    @Sendable func failures(_ request: Request, context: Context) async throws -> Response {
        try await state.answer(to: request) { try await failuresAnswer() }
    }

    private func failuresAnswer() async throws -> String {
        let status = try await state.store.status()
        let versions = Dictionary(uniqueKeysWithValues: status.checkpoints.map { ($0.id, $0) })
        var failures = status.jobs.filter { $0.state == .failed || ($0.state == .pending && $0.error != nil) }
            .compactMap { job -> Failure? in
                guard let version = versions[job.checkpointID] else { return nil }
                return Failure(
                    checkpointID: version.id, run: version.run, checkpoint: version.path, step: version.step,
                    kind: job.state == .failed ? "job" : "retrying", error: job.error ?? "",
                    attempts: job.attempts, updated: job.updated)
            }
        failures += status.checkpoints.filter { [.invalid, .unreadable, .incomplete].contains($0.state) }.map {
            Failure(
                checkpointID: $0.id, run: $0.run, checkpoint: $0.path, step: $0.step, kind: $0.state.rawValue,
                error: $0.reason ?? "", attempts: nil, updated: $0.updated)
        }
        struct Body: Codable { var failures: [Failure] }
        return try JSONBody.encoded(Body(failures: failures.sorted { $0.updated > $1.updated }))
    }

    @Sendable func alerts(_ request: Request, context: Context) async throws -> Response {
        try await state.answer(to: request) { try await alertsAnswer() }
    }

    private func alertsAnswer() async throws -> String {
        let curves = try await state.curves()
        let thresholds = state.configuration.thresholds
        /// A newest checkpoint whose ratio could not be measured: "no ratio exceeds" says nothing of it.
        struct Unmeasured: Codable {
            var run: String
            var series: String
            var step: Int?
            var multiple: Double
            var reason: String
        }
        struct Body: Codable {
            var thresholds: AlertThresholds
            var alerts: [Alert]
            var unmeasured: [Unmeasured]
        }
        let unmeasured = Extrapolation.unmeasured(Extrapolation.newest(curves), thresholds: thresholds).map {
            Unmeasured(
                run: $0.curve.run, series: $0.curve.series, step: $0.curve.step, multiple: thresholds.ratioMultiple,
                reason: $0.reason)
        }
        return try JSONBody.encoded(
            Body(thresholds: thresholds, alerts: try await state.alerts(curves), unmeasured: unmeasured))
    }

    /// What the page polls: changes whenever a result, a checkpoint or a job changes.
    @Sendable func version(_ request: Request, context: Context) async throws -> Response {
        struct Body: Codable {
            var version: String
            var results: Int
            var paused: Bool
            var watching: Bool
        }
        let stamp = try await state.stamp()
        return try JSONBody.response(
            Body(
                version: stamp.value, results: stamp.results, paused: state.daemon?.isPaused ?? false,
                watching: state.daemon?.isWatching ?? false))
    }

    // MARK: Changing

    @Sendable func requeue(_ request: Request, context: Context) async throws -> Response {
        guard let id = Int64(try context.parameters.require("id")) else {
            throw APIError.badRequest("the checkpoint id must be a whole number")
        }
        let count = try await state.store.requeue(checkpoint: id)
        struct Body: Codable {
            var checkpointID: Int64
            var requeued: Int
        }
        return try JSONBody.response(Body(checkpointID: id, requeued: count))
    }

    struct WorkerChange: Codable { var paused: Bool }

    @Sendable func worker(_ request: Request, context: Context) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: state.configuration.maximumBodyBytes)
        let change: WorkerChange
        do { change = try JSONDecoder().decode(WorkerChange.self, from: Data(buffer: body)) } catch {
            let problem: String
            switch error as? DecodingError {
            case .typeMismatch(_, let context)?, .valueNotFound(_, let context)?:
                let key = context.codingPath.map(\.stringValue).joined(separator: ".")
                problem = "'\(key)' must be true or false"
            case .keyNotFound(let key, _)?: problem = "'\(key.stringValue)' is missing"
            default: problem = "it is not JSON"
            }
            throw APIError.badRequest("the body must be JSON like {\"paused\": true}: \(problem)")
        }
        guard let daemon = state.daemon else {
            throw APIError(status: .conflict, message: "this server runs no worker")
        }
        if change.paused { daemon.pause() } else { daemon.resume() }
        return try JSONBody.response(change)
    }
}

/// Which workers `/api/workers` and `/metrics` list: those heard from within `window` seconds (heartbeats come every
/// 5 s, so a worker missing three in a row is gone).
public enum WorkerListing {
    public static let window: Double = 15
}
