import Foundation
import Evaluation
import Logging
import ResultStore
import ServiceLifecycle

/// The evaluation daemon: watches the configured folders and evaluates every complete checkpoint version once per
/// (settings, length), newest of each run first, keeping every result in the store.
///
/// Two loops share the store: the scan loop (inotify events, a settle tick while something is still being
/// written, a full rescan every `rescanSeconds`) registers versions and queues jobs; the work loop claims one job at
/// a time and evaluates it. A graceful shutdown (SIGTERM, SIGINT) stops claiming, lets the length in progress finish
/// for at most `shutdownSeconds` (else abandons it), leaves the job pending and returns.
public final class Daemon: Service, @unchecked Sendable {
    public let configuration: DaemonConfiguration
    public let store: any ResultStore
    private let logger: Logger
    private let stop = StopSignal()
    /// Scan, queue everything pending, evaluate it and return (cron, tests) instead of running until stopped.
    public let once: Bool
    /// Told of what the daemon finds and does (the server's metrics).
    private let observer: any DaemonObserver
    private let flags = DaemonFlags()

    public init(
        configuration: DaemonConfiguration, store: any ResultStore, logger: Logger, once: Bool = false,
        observer: any DaemonObserver = SilentObserver()
    ) {
        self.configuration = configuration
        self.store = store
        self.logger = logger
        self.once = once
        self.observer = observer
    }

    /// Whether the worker is paused: it finishes the length in progress, then claims nothing until resumed. Scanning
    /// goes on, so new checkpoints are still queued.
    public var isPaused: Bool { flags.paused }
    /// Whether the scan and work loops are running (`run()` started them and no stop came).
    public var isWatching: Bool { flags.watching }

    /// Pauses the worker (see `isPaused`).
    public func pause() {
        if !flags.setPaused(true) { logger.notice("worker paused") }
    }

    /// Resumes the worker.
    public func resume() {
        if flags.setPaused(false) { logger.notice("worker resumed") }
    }

    /// What a `once` pass did, and what it left.
    public struct Summary: Sendable, Hashable, Codable {
        /// Jobs finished in this pass, by final state.
        public var finished: [String: Int] = [:]
        /// Jobs left pending: waiting to retry after a transient failure, or left by a stop.
        public var pending = 0
        /// Checkpoints still being written when the pass gave up waiting for them.
        public var unsettled = 0
    }

    /// Asks the daemon to stop (what a graceful shutdown does).
    public func requestStop() { stop.request() }

    public func run() async throws {
        if once {
            _ = try await runOnce()
            return
        }
        try await prepare()
        let flag = ChangeFlag()
        let watcher = configuration.pollOnly ? nil : Watcher(flag: flag)
        if watcher == nil, !configuration.pollOnly {
            logger.warning("inotify is unavailable; polling every \(configuration.rescanSeconds) s")
        }
        logger.info(
            "watching",
            metadata: [
                "folders": "\(configuration.targets.map(\.folder))", "store": "\(store.location)",
                "threads": "\(SweepRunner.threads)", "mode": "\(watcher == nil ? "poll" : "inotify + rescan")",
            ])
        let scanner = Scanner(configuration: configuration, store: store, logger: logger)
        let worker = Worker(
            configuration: configuration, store: store, logger: logger, stop: stop, observer: observer,
            identity: identity)
        flags.setWatching(true)
        defer { flags.setWatching(false) }
        // A graceful shutdown (a signal) and a cancellation (another service of the group failed, such as a server
        // that could not bind) both stop the loops.
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await withTaskGroup(of: Void.self) { group in
                    if self.discovers { group.addTask { await self.scanLoop(scanner, watcher: watcher, flag: flag) } }
                    if self.evaluates { group.addTask { await self.workLoop(worker) } }
                    group.addTask { await self.heartbeatLoop(worker) }
                }
            } onGracefulShutdown: {
                self.logger.notice("stopping")
                self.stop.request()
            }
        } onCancel: {
            self.stop.request()
        }
        logger.info("stopped")
    }

    /// One pass: scan (waiting up to `quietSeconds` + 1 s for checkpoints still being written), evaluate every
    /// ready job, return.
    public func runOnce() async throws -> Summary {
        try await prepare()
        let scanner = Scanner(configuration: configuration, store: store, logger: logger)
        let worker = Worker(
            configuration: configuration, store: store, logger: logger, stop: stop, observer: observer,
            identity: identity)
        var summary = Summary()
        let deadline = SteadyClock.now().addingTimeInterval(configuration.quietSeconds + 1)
        while true {
            let outcome = try await scanner.scan()
            observer.discovered(checkpoints: outcome.registered)
            summary.unsettled = outcome.unsettled
            if outcome.unsettled == 0 || SteadyClock.now() >= deadline || stop.requested { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        while !stop.requested,
            let claimed = try await store.claim(worker: identity.id, leaseSeconds: configuration.leaseSeconds)
        {
            switch await worker.run(claimed) {
            case .finished(let state): summary.finished[state.rawValue, default: 0] += 1
            case .deferred, .lostLease: break
            case .storeFailed:
                throw StoreError.failed(path: configuration.store, operation: "evaluating", reason: "see the log")
            }
        }
        let counts = try await store.counts()
        summary.pending =
            counts.jobs[JobState.pending.rawValue, default: 0] + counts.jobs[JobState.running.rawValue, default: 0]
        if summary.unsettled > 0 {
            logger.notice("checkpoints still being written were left for the next pass: \(summary.unsettled)")
        }
        return summary
    }

    /// This process as a worker: its id in leases and on `/api/workers`.
    public let identity = WorkerIdentity.current
    /// Whether it scans folders (`watch`, `serve`), and whether it evaluates (not `--no-evaluate`).
    var discovers: Bool { configuration.roles.contains("discover") }
    var evaluates: Bool { configuration.roles.contains("evaluate") }

    private func prepare() async throws(StoreError) {
        if let threads = configuration.threads { SweepRunner.threads = threads }
        // Alone on the store (SQLite's writer lock), every running job was interrupted by the previous stop; in a
        // fleet only expired leases are (their workers stopped renewing).
        let requeued = try await store.rescue(all: store.isExclusive)
        if requeued > 0 { logger.notice("requeued jobs interrupted by the previous stop: \(requeued)") }
        if discovers {
            // Alone on the store, this daemon's configuration is the whole truth; in a fleet it speaks only for the
            // folders it watches (other discoverers watch others with their own settings).
            let configured = Set(configuration.targets.flatMap(\.jobs).map(\.contentHash))
            let roots = store.isExclusive ? nil : configuration.targets.map(\.folder)
            let cancelled = try await store.cancelJobs(notIn: configured, under: roots)
            if cancelled > 0 { logger.notice("cancelled jobs of settings no longer configured: \(cancelled)") }
        }
        let reopened = try await store.reopenSkipped(fitting: configuration.memoryLimit)
        if reopened > 0 { logger.notice("reopened jobs with lengths the memory limit now allows: \(reopened)") }
        if discovers { try await cleanSnapshots() }
    }

    /// Deletes the snapshots no job needs any more: those of versions whose jobs all ended, and copies no version
    /// names (a crash between the copy and its registration).
    private func cleanSnapshots() async throws(StoreError) {
        let area = SnapshotArea(folder: configuration.snapshotFolder, limit: configuration.snapshotLimit)
        var kept = Set<String>()
        for version in try await store.status().checkpoints where version.snapshot != nil {
            if let copy = try await store.releaseSnapshot(checkpoint: version.id) {
                area.remove(copy)
            } else if let copy = version.snapshot, let holder = area.holder(of: copy) {
                kept.insert(holder)
            }
        }
        let stray = area.copies().filter { !kept.contains($0) }
        stray.forEach(area.remove)
        if !kept.isEmpty || !stray.isEmpty {
            logger.notice(
                "snapshots",
                metadata: ["kept": "\(kept.count)", "deleted": "\(stray.count)", "folder": "\(area.folder)"])
        }
    }

    private func scanLoop(_ scanner: Scanner, watcher: Watcher?, flag: ChangeFlag) async {
        var nextRescan = Date.distantPast
        var nextSettle = Date.distantFuture
        var nextHot = Date.distantFuture
        var failures = 0
        while !stop.requested {
            let now = SteadyClock.now()
            if now >= nextHot {
                // Files rewritten in place that changed lately, looked at without a full scan. A store failure here
                // is met again by the next full scan, which logs it and backs off.
                let outcome = try? await scanner.checkHot()
                observer.discovered(checkpoints: outcome?.registered ?? 0)
                nextHot = outcome?.hot == true ? now.addingTimeInterval(0.2) : .distantFuture
            }
            if flag.lower() || now >= nextRescan || now >= nextSettle {
                do {
                    let outcome = try await scanner.scan()
                    observer.discovered(checkpoints: outcome.registered)
                    watcher?.watch(outcome.folders)
                    failures = 0
                    nextRescan = now.addingTimeInterval(configuration.rescanSeconds)
                    nextSettle =
                        outcome.unsettled > 0
                        ? now.addingTimeInterval(min(1, max(configuration.quietSeconds / 4, 0.05))) : .distantFuture
                    if outcome.hot { nextHot = min(nextHot, now.addingTimeInterval(0.2)) }
                } catch {
                    failures += 1
                    let delay = min(configuration.retrySeconds * Double(failures), configuration.maximumRetrySeconds)
                    logger.error("scan failed", metadata: ["error": "\(error)", "retry_in_seconds": "\(delay)"])
                    nextSettle = now.addingTimeInterval(delay)
                }
            }
            try? await Task.sleep(for: .milliseconds(100))  // cancelled: the loop's own check ends it
        }
    }

    private func workLoop(_ worker: Worker) async {
        var failures = 0
        var nextRescue = Date.distantPast
        while !stop.requested {
            if flags.paused {
                await sleep(seconds: 0.25)
                continue
            }
            let claimed: ClaimedJob?
            do {
                if SteadyClock.now() >= nextRescue {
                    // Jobs of workers that stopped renewing (killed, frozen, cut off) go back to the queue.
                    let rescued = try await store.rescue(all: false)
                    if rescued > 0 { logger.notice("requeued jobs whose lease ran out: \(rescued)") }
                    observer.rescued(jobs: rescued)
                    nextRescue = SteadyClock.now().addingTimeInterval(max(configuration.leaseSeconds / 4, 0.5))
                }
                claimed = try await store.claim(worker: identity.id, leaseSeconds: configuration.leaseSeconds)
                if failures > 0 { logger.notice("the store is reachable again") }
                failures = 0
            } catch {
                failures += 1
                let delay = min(configuration.retrySeconds * Double(failures), configuration.maximumRetrySeconds)
                logger.error("cannot claim a job", metadata: ["error": "\(error)", "retry_in_seconds": "\(delay)"])
                await sleep(seconds: delay)
                continue
            }
            guard let claimed else {
                await sleep(seconds: 0.25)
                continue
            }
            if await worker.run(claimed) == .storeFailed {
                failures += 1
                await sleep(
                    seconds: min(configuration.retrySeconds * Double(failures), configuration.maximumRetrySeconds))
            }
        }
    }

    /// Tells the store this process is alive, and which job it runs, every `heartbeatSeconds`.
    private func heartbeatLoop(_ worker: Worker) async {
        while !stop.requested {
            do {
                try await store.heartbeat(
                    WorkerInfo(
                        id: identity.id, host: identity.host, pid: identity.pid, roles: configuration.roles,
                        job: worker.currentJob))
            } catch {
                logger.debug("heartbeat failed", metadata: ["error": "\(error)"])
            }
            await sleep(seconds: configuration.heartbeatSeconds)
        }
    }

    /// Sleeps up to `seconds`, waking early on a stop.
    private func sleep(seconds: Double) async {
        let end = SteadyClock.now().addingTimeInterval(seconds)
        while !stop.requested, SteadyClock.now() < end { try? await Task.sleep(for: .milliseconds(100)) }
    }
}

/// What the daemon tells an observer (the server's metrics); every call is cheap and must not block.
public protocol DaemonObserver: Sendable {
    /// A scan registered `checkpoints` new versions (complete or not).
    func discovered(checkpoints: Int)
    /// A (series, length) result was written: how it ended, the seconds it took and the tokens it scored.
    func stored(outcome: ResultOutcome, seconds: Double, tokens: Int)
    /// A job ended in `state` (done, failed, replaced, gone).
    func finished(job state: JobState)
    /// `jobs` whose lease ran out were returned to the queue.
    func rescued(jobs: Int)
    /// This worker lost the lease of a job it was running (another took it over).
    func lostLease()
}

extension DaemonObserver {
    public func rescued(jobs: Int) {}
    public func lostLease() {}
}

/// Who this process is in leases and heartbeats: `host:pid:random`, unique across machines and restarts.
public struct WorkerIdentity: Sendable, Hashable {
    public var id: String
    public var host: String
    public var pid: Int32

    public static let current: WorkerIdentity = {
        let host = ProcessInfo.processInfo.hostName
        let pid = getpid()
        let tag = String(UInt32.random(in: 0..<UInt32.max), radix: 36)
        return WorkerIdentity(id: "\(host):\(pid):\(tag)", host: host, pid: pid)
    }()
}

/// An observer that ignores everything.
public struct SilentObserver: DaemonObserver {
    public init() {}
    public func discovered(checkpoints: Int) {}
    public func stored(outcome: ResultOutcome, seconds: Double, tokens: Int) {}
    public func finished(job state: JobState) {}
}

/// The daemon's pause and watching flags, shared by its loops and the server's threads.
private final class DaemonFlags: @unchecked Sendable {
    private let lock = NSLock()
    private var isPaused = false
    private var isWatching = false

    var paused: Bool { lock.withLock { isPaused } }
    var watching: Bool { lock.withLock { isWatching } }

    /// Sets the pause flag; returns what it was.
    func setPaused(_ value: Bool) -> Bool {
        lock.withLock {
            defer { isPaused = value }
            return isPaused
        }
    }

    func setWatching(_ value: Bool) { lock.withLock { isWatching = value } }
}
