import Checkpoints
import Evaluation
import Foundation
import Logging
import ResultStore

/// Evaluates claimed jobs length by length, through the same `SweepRunner` as `sweep`.
///
/// Each (series, length) whose result key is already stored is linked, not computed (a copied checkpoint, a length
/// added to the grid later). Each new result is written in one transaction with the job's progress. Before a result
/// is written the checkpoint's files are stamped again: a file rewritten meanwhile ends the job as `replaced`
/// (its new version has its own job) and a deleted one as `gone`; neither is an error.
///
/// Every write goes with the job's lease, renewed after each length and on a timer while a length runs. When the
/// store refuses it (`StoreError.lostLease`: the lease ran out and another worker took the job, or the scanner ended
/// it) the worker logs it, stops the job and writes nothing more.
final class Worker: @unchecked Sendable {
    fileprivate let configuration: DaemonConfiguration
    private let store: any ResultStore
    fileprivate let logger: Logger
    fileprivate let stop: StopSignal
    private let clock: @Sendable () -> Date
    private let observer: any DaemonObserver
    /// The evaluation data of the last job, reused while the settings and span are the same.
    private var data: (settings: EvaluationSettings, longest: Int, data: EvaluationData)?
    /// This process in leases.
    let identity: WorkerIdentity
    private let running = LockedValue<Int64?>(nil)
    /// The job being evaluated now, for heartbeats.
    var currentJob: Int64? { running.value }

    init(
        configuration: DaemonConfiguration, store: any ResultStore, logger: Logger, stop: StopSignal,
        observer: any DaemonObserver = SilentObserver(), identity: WorkerIdentity = .current,
        clock: @escaping @Sendable () -> Date = Date.init
    ) {
        self.identity = identity
        self.observer = observer
        self.configuration = configuration
        self.store = store
        self.logger = logger
        self.stop = stop
        self.clock = clock
    }

    /// How a job's turn ended.
    enum Turn: Equatable {
        case finished(JobState)
        /// Left pending (a stop, or a transient failure to retry).
        case deferred
        /// Left pending because the store could not be written: wait before claiming again.
        case storeFailed
        /// The job's lease was lost (another worker has it now): stopped, nothing more written.
        case lostLease
    }

    /// Runs one claimed job to its end (or until a stop).
    func run(_ claimed: ClaimedJob) async -> Turn {
        let job = claimed.job
        var metadata: Logger.Metadata = [
            "job": "\(job.id)", "checkpoint": "\(claimed.checkpoint.path)", "run": "\(claimed.checkpoint.run)",
            "attempt": "\(claimed.lease.attempt)",
        ]
        if let step = claimed.checkpoint.step { metadata["step"] = "\(step)" }
        running.value = job.id
        defer { running.value = nil }
        let lease = LeaseKeeper(claimed.lease)
        let tags = metadata
        let renewal = Task { [self] in await keepRenewing(lease, metadata: tags) }
        defer { renewal.cancel() }
        do {
            let state = try await evaluate(claimed, lease: lease, metadata: metadata)
            try await persist("finishing the job", metadata: metadata) { () throws(StoreError) in
                try await store.finish(
                    lease.current, state: state, error: nil, attempts: job.attempts, retrySeconds: nil)
            }
            if state == .pending { return .deferred }
            observer.finished(job: state)
            logger.info("job \(state.rawValue)", metadata: metadata)
            await releaseSnapshot(of: claimed.checkpoint)
            return .finished(state)
        } catch {
            return await fail(job, lease: lease, checkpoint: claimed.checkpoint, error: error, metadata: metadata)
        }
    }

    /// Renews the lease every `leaseSeconds / 3` while a length runs; stops when the job ends or the lease is lost.
    private func keepRenewing(_ lease: LeaseKeeper, metadata: Logger.Metadata) async {
        let interval = max(configuration.leaseSeconds / 3, 0.05)
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(Int(interval * 1000)))  // cancelled: the loop's check ends it
            if Task.isCancelled { return }
            do {
                lease.current = try await store.renew(lease.current, seconds: configuration.leaseSeconds)
            } catch .lostLease {
                lease.lost = true
                return
            } catch {
                // The store is unreachable: the lease may run out meanwhile; the next write finds out.
                logger.warning("cannot renew the lease", metadata: metadata.merging(["error": "\(error)"]) { $1 })
            }
        }
    }

    /// Records a failure: transient ones (I/O, permissions, the store itself) are retried with backoff, the rest
    /// fail the job until the checkpoint's files change.
    private func fail(
        _ job: JobRecord, lease: LeaseKeeper, checkpoint: CheckpointRecord, error: any Error,
        metadata: Logger.Metadata
    ) async -> Turn {
        var metadata = metadata
        let text = "\(error)"
        metadata["error"] = "\(text)"
        if case .lostLease = error as? StoreError {
            // Another worker has the job (or the scanner ended it): whatever this one computed is dropped.
            logger.warning(
                "lease lost: the job is no longer this worker's; stopped, nothing written", metadata: metadata)
            observer.lostLease()
            return .lostLease
        }
        if error is StoreError {
            // The store's fault (a full disk), not the checkpoint's: no attempt is counted; the work loop backs off.
            logger.error("cannot write the store; the job stays pending", metadata: metadata)
            // The store is failing already: if this write fails too the lease runs out and the rescuer returns the
            // job to the queue, so nothing is lost either way.
            try? await store.finish(
                lease.current, state: .pending, error: job.error, attempts: job.attempts, retrySeconds: nil)
            return .storeFailed
        }
        let attempts = job.attempts + 1
        let transient = Self.isTransient(error) && attempts < configuration.maximumAttempts
        let delay = min(
            configuration.retrySeconds * pow(2, Double(attempts - 1)), configuration.maximumRetrySeconds)
        do {
            if transient {
                metadata["retry_in_seconds"] = "\(delay)"
                logger.warning("job failed, will retry", metadata: metadata)
                try await store.finish(
                    lease.current, state: .pending, error: text, attempts: attempts, retrySeconds: delay)
                return .deferred
            }
            logger.error("job failed", metadata: metadata)
            try await store.finish(lease.current, state: .failed, error: text, attempts: attempts, retrySeconds: nil)
            observer.finished(job: .failed)
            await releaseSnapshot(of: checkpoint)
            return .finished(.failed)
        } catch .lostLease {
            logger.warning(
                "lease lost: the job is no longer this worker's; its failure is not recorded", metadata: metadata)
            observer.lostLease()
            return .lostLease
        } catch {
            // The store cannot even record the failure (a full disk): the job stays running in the store until its
            // lease runs out (or the next start); nothing earlier is lost.
            metadata["store_error"] = "\(error)"
            logger.critical("cannot record a job's failure", metadata: metadata)
            return .deferred
        }
    }

    /// Deletes the version's snapshot once none of its jobs is left to run (one waiting to retry keeps it).
    private func releaseSnapshot(of version: CheckpointRecord) async {
        guard version.snapshot != nil else { return }
        do {
            if let copy = try await store.releaseSnapshot(checkpoint: version.id) {
                // The copy's folder too: a lone file's copy is `holder/ckpt.pt`.
                SnapshotArea(folder: configuration.snapshotFolder, limit: configuration.snapshotLimit).remove(copy)
            }
        } catch {
            // Kept until the next start's cleanup (`Daemon.prepare`); nothing is lost.
            logger.warning(
                "cannot release a snapshot", metadata: ["checkpoint": "\(version.path)", "error": "\(error)"])
        }
    }

    /// Runs a store write, waiting out a store that cannot be reached (a database restart, a network drop) with
    /// backoff and one log line: the write happens once the store is back, unless a stop comes first, or fails with
    /// `lostLease` when another worker took the job meanwhile.
    private func persist<T>(
        _ what: String, metadata: Logger.Metadata, _ body: () async throws(StoreError) -> T
    ) async throws(StoreError) -> T {
        var delay = 0.25
        var waited = false
        while true {
            do {
                let value = try await body()
                if waited { logger.notice("the store is back; \(what) done", metadata: metadata) }
                return value
            } catch {
                guard case .unavailable = error, !stop.requested else { throw error }
                if !waited {
                    logger.warning(
                        "the store cannot be reached; \(what) waits for it",
                        metadata: metadata.merging(["error": "\(error)"]) { $1 })
                    waited = true
                }
                try? await Task.sleep(for: .milliseconds(Int(delay * 1000)))  // cancelled: the loop's check ends it
                delay = min(delay * 2, 5)
            }
        }
    }

    static func isTransient(_ error: any Error) -> Bool { (error as? EvaluationError)?.isTransient ?? false }

    /// The job's body: load, plan, then each missing (series, length) in turn. Returns the job's final state, or
    /// `.pending` after a stop.
    private func evaluate(
        _ claimed: ClaimedJob, lease: LeaseKeeper, metadata: Logger.Metadata
    ) async throws -> JobState {
        let (job, version) = (claimed.job, claimed.checkpoint)
        if let changed = filesChanged(version) { return changed }
        let name = CheckpointName(
            run: version.run, step: version.step, scheme: CheckpointNamingScheme(rawValue: version.scheme) ?? .plain)
        var checkpoint: SweepCheckpoint
        do {
            // A version kept in a snapshot is read from it: the path may already hold a later save.
            checkpoint = try SweepCheckpoint.load(
                version.snapshot ?? version.path, trainedLength: job.settings.trainedLength,
                allowUnknownConfigKeys: job.settings.allowUnknownConfigKeys ?? false,
                precision: job.settings.computedPrecision, name: name)
            checkpoint.summary.checkpoint = version.path
        } catch {
            if let changed = filesChanged(version) { return changed }
            throw error
        }
        let runner = SweepRunner(settings: job.settings)
        if let passkey = job.settings.passkey {
            return try await evaluatePasskey(
                claimed, checkpoint: checkpoint, runner: runner, passkey: passkey, lease: lease, metadata: metadata)
        }
        let tasks = try runner.series(of: checkpoint)
        let data = try evaluationData(job.settings, longest: Self.longest(tasks, checkpoint: checkpoint))
        try data.checkCompatible(with: checkpoint.model, checkpoint: version.path)
        logger.info("job started: \(runner.plan([checkpoint], data: data))", metadata: metadata)
        let scoring = job.settings.scoringHash(targets: data.targets)
        let keys = tasks.map {
            ResultKey(
                contentHash: version.contentHash, architectureHash: checkpoint.summary.architectureHash,
                scoringHash: scoring, series: $0.series, length: $0.length, engineVersion: SweepRunner.engineVersion)
        }
        let standing = try await linkStanding(keys, lease: lease, metadata: metadata)
        return try await run(version, keys: keys, lease: lease, unit: "length", metadata: metadata) { passes, record in
            try await runner.evaluate(
                tasks, except: Set(tasks.indices.filter { standing.contains(keys[$0].value) }), data: data,
                memoryLimit: configuration.memoryLimit, compute: { await passes.run($0) }, record: record)
        }
    }

    /// Runs a pass on its own thread unless a stop was asked or the lease is lost; `nil` when it was not run, or
    /// abandoned by a stop (said once in the log).
    struct PassGuard {
        let worker: Worker
        let lease: LeaseKeeper
        let unit: String
        let metadata: Logger.Metadata

        func run<T: Sendable>(_ pass: @escaping @Sendable () -> T) async -> T? {
            if worker.stop.requested || lease.lost { return nil }
            let value = await worker.stop.race(deadline: worker.configuration.shutdownSeconds, pass)
            if value == nil {
                worker.logger.notice("stopping: the \(unit) in progress is abandoned", metadata: metadata)
            }
            return value
        }
    }

    /// What every job's body shares around its evaluation: each result is stored (with the lease) only while the
    /// checkpoint's bytes are still the version's; a change ends the job as `replaced` or `gone`, a lost lease
    /// throws. `evaluate` gets the guard its passes run through and the recorder of each length or cell, and returns
    /// whether it ran everything. Returns the job's final state, or `.pending` after a stop.
    private func run(
        _ version: CheckpointRecord, keys: [ResultKey], lease: LeaseKeeper, unit: String, metadata: Logger.Metadata,
        _ evaluate: (PassGuard, (SweepRunner.LengthResult) async throws -> Bool) async throws -> Bool
    ) async throws -> JobState {
        var ended: JobState?
        let complete: Bool
        do {
            complete = try await evaluate(
                PassGuard(worker: self, lease: lease, unit: unit, metadata: metadata),
                { result in
                    // The bytes must still be the version the job is for.
                    if let changed = filesChanged(version) {
                        ended = changed
                        return false
                    }
                    if lease.lost { throw StoreError.lostLease(lease.current) }
                    try await record(
                        result, key: keys[result.index], lease: lease, planned: keys.count, metadata: metadata)
                    return true
                })
        } catch {
            if let changed = filesChanged(version) { return changed }
            throw error
        }
        if lease.lost { throw StoreError.lostLease(lease.current) }
        return complete ? .done : ended ?? .pending
    }

    /// Links the results among `keys` already stored (the same content reached through another path or settings)
    /// to the job, and returns their keys. A result stands unless it was skipped for memory and the limit now allows
    /// it.
    private func linkStanding(_ keys: [ResultKey], lease: LeaseKeeper, metadata: Logger.Metadata) async throws
        -> Set<String>
    {
        let existing = try await store.results(forKeys: keys.map(\.value))
        let standing = Set(
            existing.filter { _, result in
                result.outcome != .skipped || (result.memoryEstimate ?? 0) > (configuration.memoryLimit ?? .max)
            }.keys)
        try await persist("linking stored results", metadata: metadata) { () throws(StoreError) in
            try await store.link(keys: Array(standing), lease: lease.current, planned: keys.count)
        }
        return standing
    }

    /// A passkey job's body: each (series, length, depth) cell not yet stored, in turn, stored as it ends (a
    /// result per cell, keyed by `PasskeySettings.scoringHash`). Returns the job's final state, or `.pending` after
    /// a stop.
    private func evaluatePasskey(
        _ claimed: ClaimedJob, checkpoint: SweepCheckpoint, runner: SweepRunner, passkey: PasskeySettings,
        lease: LeaseKeeper, metadata: Logger.Metadata
    ) async throws -> JobState {
        let version = claimed.checkpoint
        let encoding = try passkey.encoding(for: checkpoint.model, checkpoint: version.path)
        let cells = try runner.passkeyCells(of: checkpoint, passkey: passkey)
        logger.info(
            """
            job started: passkey retrieval, \(cells.count) cells (series × lengths × depths) of \(passkey.trials) \
            prompts each, tokenized as \(encoding.name)
            """, metadata: metadata)
        let keys = cells.map {
            ResultKey(
                contentHash: version.contentHash, architectureHash: checkpoint.summary.architectureHash,
                scoringHash: passkey.scoringHash(
                    depth: $0.depth, encoding: encoding.identity, precision: claimed.job.settings.precision),
                series: $0.job.series,
                length: $0.job.length, engineVersion: SweepRunner.engineVersion)
        }
        let standing = try await linkStanding(keys, lease: lease, metadata: metadata)
        return try await run(version, keys: keys, lease: lease, unit: "cell", metadata: metadata) { passes, record in
            try await runner.evaluatePasskey(
                cells, except: Set(cells.indices.filter { standing.contains(keys[$0].value) }), passkey: passkey,
                encoding: encoding, memoryLimit: configuration.memoryLimit, compute: { await passes.run($0) },
                record: record)
        }
    }

    /// Stores one length's result with the job's progress, and says so.
    private func record(
        _ length: SweepRunner.LengthResult, key: ResultKey, lease: LeaseKeeper, planned: Int,
        metadata: Logger.Metadata
    ) async throws {
        let outcome = ResultOutcome(rawValue: length.outcome.rawValue) ?? .evaluated
        let finished = clock()
        let result = ResultRecord(
            key: key, outcome: outcome, point: length.point, reason: length.reason,
            memoryEstimate: length.memoryEstimate, started: length.started, finished: finished)
        try await persist("recording a result", metadata: metadata) { () throws(StoreError) in
            try await store.record(result, lease: lease.current, planned: planned)
            // A length done is a sign of life: the lease starts again from now.
            lease.current = try await store.renew(lease.current, seconds: configuration.leaseSeconds)
        }
        observer.stored(
            outcome: outcome, seconds: finished.timeIntervalSince(length.started), tokens: length.point.tokens ?? 0)
        var done = metadata
        done["length"] = "\(length.job.length)"
        done["series"] = "\(length.job.series)"
        done["outcome"] = "\(outcome.rawValue)"
        if let perplexity = length.point.perplexity { done["perplexity"] = "\(perplexity)" }
        if let cell = length.point.passkey {
            done["depth"] = "\(cell.depth)"
            if cell.skipped == nil { done["passkey_accuracy"] = "\(cell.accuracy)" }
        }
        logger.info("result stored", metadata: done)
    }

    /// The longest window the span must serve: 16 × the trained length (the standard grid's longest), or the
    /// grid's longest if longer. Fixing it this way keeps the scored tokens, and so every stored result, the same
    /// when lengths up to 16× are added to the grid later.
    static func longest(_ tasks: [SweepRunner.Job], checkpoint: SweepCheckpoint) -> Int {
        max(16 * checkpoint.summary.trainedLength, tasks.map(\.length).max() ?? 2)
    }

    private func evaluationData(_ settings: EvaluationSettings, longest: Int) throws(EvaluationError)
        -> EvaluationData
    {
        if let data, data.settings == settings, data.longest == longest { return data.data }
        let loaded = try EvaluationData.load(settings, longest: longest)
        data = (settings, longest, loaded)
        return loaded
    }

    /// `gone` or `replaced` when the checkpoint's files are no longer the version's, else `nil`. A snapshot is the
    /// version's own copy: only its disappearance ends the job.
    private func filesChanged(_ version: CheckpointRecord) -> JobState? {
        if let snapshot = version.snapshot { return FileManager.default.fileExists(atPath: snapshot) ? nil : .gone }
        guard let candidate = Discovery.candidate(at: version.path, runFolder: version.runFolder) else {
            return .gone
        }
        return candidate.size == version.size && candidate.modified == version.modified ? nil : .replaced
    }
}

/// A stop request, and a way to wait for blocking work that gives up a bounded time after a stop.
final class StopSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false
    private var waiters: [() -> Void] = []

    var requested: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopped
    }

    func request() {
        lock.lock()
        stopped = true
        let wake = waiters
        waiters = []
        lock.unlock()
        wake.forEach { $0() }
    }

    /// Calls `body` when a stop is requested (at once if it already was).
    func onStop(_ body: @escaping () -> Void) {
        lock.lock()
        if stopped {
            lock.unlock()
            body()
            return
        }
        waiters.append(body)
        lock.unlock()
    }

    /// Runs `body` on its own thread; returns its value, or `nil` when a stop came and `deadline` seconds passed
    /// first (the thread is left to finish and its value is dropped).
    func race<T: Sendable>(deadline: Double, _ body: @escaping @Sendable () -> T) async -> T? {
        await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
            let once = Once(continuation)
            let thread = Thread {
                once.resume(body())
            }
            thread.stackSize = 16 << 20
            thread.start()
            onStop {
                DispatchQueue.global().asyncAfter(deadline: .now() + deadline) { once.resume(nil) }
            }
        }
    }
}

/// Resumes a continuation once, whichever caller comes first.
private final class Once<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<T?, Never>?

    init(_ continuation: CheckedContinuation<T?, Never>) { self.continuation = continuation }

    func resume(_ value: T?) {
        lock.lock()
        let pending = continuation
        continuation = nil
        lock.unlock()
        pending?.resume(returning: value)
    }
}

/// A job's lease as the worker holds it: renewed by a timer and after each length, read by every write; `lost` is
/// set when a renewal was refused, and the next write stops the job.
final class LeaseKeeper: Sendable {
    private let held: LockedValue<Lease>
    private let refused = LockedValue(false)

    init(_ lease: Lease) { held = LockedValue(lease) }

    var current: Lease {
        get { held.value }
        set { held.value = newValue }
    }

    var lost: Bool {
        get { refused.value }
        set { refused.value = newValue }
    }
}

/// A value behind a lock: state the worker shares with the heartbeat loop, the server's kept answers.
public final class LockedValue<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T

    public init(_ value: T) { stored = value }

    public var value: T {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}
