import Evaluation
import Foundation

/// A store in memory with `SQLiteStore`'s behaviour: for tests, and for a daemon that needs to keep nothing.
public final class MemoryStore: ResultStore, @unchecked Sendable {
    private let lock = NSLock()
    private var checkpoints: [CheckpointRecord] = []
    private var jobs: [JobRecord] = []
    private var stored: [String: ResultRecord] = [:]
    private var links: [Int64: Set<String>] = [:]
    private var workerRecords: [String: WorkerRecord] = [:]
    private var nextID: Int64 = 1
    /// The store's clock (tests move it to see leases run out and retries come due).
    private let clock: @Sendable () -> Date

    public init(clock: @escaping @Sendable () -> Date = Date.init) { self.clock = clock }

    public var isExclusive: Bool { true }
    public var location: String { "memory" }

    private func locked<T>(_ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    private func newID() -> Int64 {
        defer { nextID += 1 }
        return nextID
    }

    public func register(_ s: Sighting) async throws(StoreError) -> (record: CheckpointRecord, isNew: Bool) {
        try locked { () throws(StoreError) in
            let now = clock()
            if let index = checkpoints.firstIndex(where: { $0.path == s.path && $0.contentHash == s.contentHash }) {
                if checkpoints[index].state != s.state || checkpoints[index].reason != s.reason {
                    if !checkpoints[index].isLive {
                        replaceLive(path: s.path, except: checkpoints[index].id, at: now)
                        for job in jobs.indices
                        where jobs[job].checkpointID == checkpoints[index].id
                            && [.gone, .replaced].contains(jobs[job].state)
                        {
                            jobs[job].state = .pending
                            jobs[job].updated = now
                        }
                    }
                    checkpoints[index].state = s.state
                    checkpoints[index].reason = s.reason
                    checkpoints[index].updated = now
                }
                return (checkpoints[index], false)
            }
            replaceLive(path: s.path, except: nil, at: now)
            let record = CheckpointRecord(
                id: newID(), run: s.run, runFolder: s.runFolder, path: s.path, step: s.step, scheme: s.scheme,
                size: s.size, modified: s.modified, contentHash: s.contentHash, state: s.state, reason: s.reason,
                discovered: now, updated: now, snapshot: s.snapshot)
            checkpoints.append(record)
            return (record, true)
        }
    }

    public func liveVersion(path: String) async throws(StoreError) -> CheckpointRecord? {
        try locked { () throws(StoreError) in checkpoints.last { $0.path == path && $0.isLive } }
    }

    private func replaceLive(path: String, except: Int64?, at now: Date) {
        for index in checkpoints.indices
        where checkpoints[index].path == path && checkpoints[index].isLive && checkpoints[index].id != except {
            end(at: index, as: .replaced, at: now)
        }
        dropEnded()
    }

    /// Ends the version at `index` as `state` (with its unfinished jobs); one that was never complete and has no
    /// jobs is only marked for `dropEnded`.
    private func end(at index: Int, as state: CheckpointState, at now: Date) {
        let id = checkpoints[index].id
        if checkpoints[index].state.neverComplete, !jobs.contains(where: { $0.checkpointID == id }) {
            checkpoints[index].id = -1
            return
        }
        checkpoints[index].state = state
        checkpoints[index].updated = now
        // A version kept in a snapshot stays evaluable when its path is rewritten.
        if state == .replaced, checkpoints[index].snapshot != nil { return }
        endJobs(of: id, as: state == .gone ? .gone : .replaced, at: now)
    }

    /// Drops the versions `end` marked: never complete, now superseded, describing nothing on disk.
    private func dropEnded() { checkpoints.removeAll { $0.id == -1 } }

    private func endJobs(of checkpoint: Int64, as state: JobState, at now: Date) {
        for index in jobs.indices
        where jobs[index].checkpointID == checkpoint && [.pending, .running].contains(jobs[index].state) {
            jobs[index].state = state
            jobs[index].updated = now
        }
    }

    public func markGone(under root: String, present: Set<String>) async throws(StoreError) -> [CheckpointRecord] {
        try locked { () throws(StoreError) in
            let now = clock()
            var marked: [CheckpointRecord] = []
            for index in checkpoints.indices
            where checkpoints[index].isLive && checkpoints[index].runFolder.isInside(root)
                && !present.contains(checkpoints[index].path)
            {
                var record = checkpoints[index]
                end(at: index, as: .gone, at: now)
                (record.state, record.updated) = (.gone, now)
                marked.append(record)
            }
            dropEnded()
            return marked
        }
    }

    public func ensureJob(checkpoint: Int64, settings: EvaluationSettings) async throws(StoreError) -> JobRecord? {
        try locked { () throws(StoreError) in
            let now = clock()
            let hash = settings.contentHash
            guard checkpoints.contains(where: { $0.id == checkpoint }) else {
                throw .missing("checkpoint \(checkpoint)")
            }
            if let index = jobs.firstIndex(where: { $0.checkpointID == checkpoint && $0.settingsHash == hash }) {
                // A job cancelled under another configuration is taken up again; any other stands.
                guard jobs[index].state == .cancelled else { return nil }
                (jobs[index].state, jobs[index].attempts, jobs[index].error) = (.pending, 0, nil)
                jobs[index].updated = now
                return jobs[index]
            }
            let job = JobRecord(
                id: newID(), checkpointID: checkpoint, settings: settings, settingsHash: hash, state: .pending,
                done: 0, planned: 0, attempts: 0, notBefore: nil, error: nil, created: now, updated: now)
            jobs.append(job)
            return job
        }
    }

    public func claim(worker: String, leaseSeconds: Double) async throws(StoreError) -> ClaimedJob? {
        try locked { () throws(StoreError) in
            let now = clock()
            let byID = Dictionary(uniqueKeysWithValues: checkpoints.map { ($0.id, $0) })
            let ready = jobs.compactMap { job -> (job: Int64, checkpoint: CheckpointRecord, stage: Int)? in
                guard job.state == .pending, (job.notBefore ?? .distantPast) <= now,
                    let checkpoint = byID[job.checkpointID], checkpoint.isEvaluable
                else { return nil }
                return (job.id, checkpoint, job.settings.task.queueStage)
            }
            guard let id = JobOrder.next(ready, current: checkpoints.filter(\.isEvaluable)),
                let index = jobs.firstIndex(where: { $0.id == id }), let checkpoint = byID[jobs[index].checkpointID]
            else { return nil }
            jobs[index].state = .running
            jobs[index].worker = worker
            jobs[index].attempt += 1
            jobs[index].leaseUntil = now.addingTimeInterval(leaseSeconds)
            jobs[index].updated = now
            return ClaimedJob(job: jobs[index], checkpoint: checkpoint)
        }
    }

    /// The index of the job `lease` holds, or `lostLease`.
    private func held(_ lease: Lease) throws(StoreError) -> Int {
        guard let index = jobs.firstIndex(where: { $0.id == lease.job }),
            jobs[index].state == .running, jobs[index].worker == lease.worker, jobs[index].attempt == lease.attempt
        else { throw .lostLease(lease) }
        return index
    }

    public func renew(_ lease: Lease, seconds: Double) async throws(StoreError) -> Lease {
        try locked { () throws(StoreError) in
            let index = try held(lease)
            let now = clock()
            jobs[index].leaseUntil = now.addingTimeInterval(seconds)
            jobs[index].updated = now
            var renewed = lease
            renewed.until = now.addingTimeInterval(seconds)
            return renewed
        }
    }

    public func rescue(all: Bool) async throws(StoreError) -> Int {
        try locked { () throws(StoreError) in
            let now = clock()
            var count = 0
            for index in jobs.indices {
                if jobs[index].state == .running, all || (jobs[index].leaseUntil ?? .distantPast) < now {
                    jobs[index].state = .pending
                    jobs[index].leaseUntil = nil
                    jobs[index].updated = now
                    count += 1
                }
                if all, jobs[index].state == .pending { jobs[index].notBefore = nil }
            }
            return count
        }
    }

    public func heartbeat(_ worker: WorkerInfo) async throws(StoreError) {
        try locked { () throws(StoreError) in
            let now = clock()
            workerRecords[worker.id] = WorkerRecord(
                info: worker, started: workerRecords[worker.id]?.started ?? now, heartbeat: now)
        }
    }

    public func workers(withinSeconds: Double) async throws(StoreError) -> [WorkerRecord] {
        try locked { () throws(StoreError) in
            let since = clock().addingTimeInterval(-withinSeconds)
            return workerRecords.values.filter { $0.heartbeat >= since }.sorted { $0.heartbeat > $1.heartbeat }
        }
    }

    public func cancelJobs(notIn configured: Set<String>, under roots: [String]?) async throws(StoreError) -> Int {
        try locked { () throws(StoreError) in
            let now = clock()
            let folders = Dictionary(uniqueKeysWithValues: checkpoints.map { ($0.id, $0.runFolder) })
            var count = 0
            for index in jobs.indices
            where [.pending, .running].contains(jobs[index].state) && !configured.contains(jobs[index].settingsHash)
                && (roots.map { roots in roots.contains { folders[jobs[index].checkpointID]?.isInside($0) == true } }
                    ?? true)
            {
                jobs[index].state = .cancelled
                jobs[index].updated = now
                count += 1
            }
            return count
        }
    }

    public func releaseSnapshot(checkpoint: Int64) async throws(StoreError) -> String? {
        try locked { () throws(StoreError) in
            guard
                !jobs.contains(where: { $0.checkpointID == checkpoint && [.pending, .running].contains($0.state) }),
                let index = checkpoints.firstIndex(where: { $0.id == checkpoint })
            else { return nil }
            defer { checkpoints[index].snapshot = nil }
            return checkpoints[index].snapshot
        }
    }

    public func requeue(checkpoint: Int64) async throws(StoreError) -> Int {
        try locked { () throws(StoreError) in
            let now = clock()
            guard checkpoints.contains(where: { $0.id == checkpoint }) else {
                throw StoreError.missing("checkpoint \(checkpoint)")
            }
            var count = 0
            for index in jobs.indices where jobs[index].checkpointID == checkpoint && jobs[index].state == .failed {
                jobs[index].state = .pending
                jobs[index].attempts = 0
                jobs[index].notBefore = nil
                jobs[index].error = nil
                jobs[index].updated = now
                count += 1
            }
            return count
        }
    }

    public func reopenSkipped(fitting limit: Int?) async throws(StoreError) -> Int {
        try locked { () throws(StoreError) in
            let now = clock()
            var count = 0
            for index in jobs.indices where jobs[index].state == .done {
                let fits = (links[jobs[index].id] ?? []).contains { key in
                    guard let result = stored[key], result.outcome == .skipped, let estimate = result.memoryEstimate
                    else { return false }
                    return estimate <= (limit ?? .max)
                }
                if fits {
                    jobs[index].state = .pending
                    jobs[index].updated = now
                    count += 1
                }
            }
            return count
        }
    }

    public func results(forKeys keys: [String]) async throws(StoreError) -> [String: ResultRecord] {
        try locked { () throws(StoreError) in
            Dictionary(uniqueKeysWithValues: keys.compactMap { key in stored[key].map { (key, $0) } })
        }
    }

    public func record(_ result: ResultRecord, lease: Lease, planned: Int) async throws(StoreError) {
        try locked { () throws(StoreError) in
            let index = try held(lease)
            let (job, now) = (lease.job, clock())
            if let existing = stored[result.key], existing.outcome != .skipped {
                // Kept: a result is never written twice.
            } else {
                stored[result.key] = result
            }
            links[job, default: []].insert(result.key)
            jobs[index].done = links[job]?.count ?? 0
            jobs[index].planned = planned
            jobs[index].updated = now
        }
    }

    public func link(keys: [String], lease: Lease, planned: Int) async throws(StoreError) {
        try locked { () throws(StoreError) in
            let index = try held(lease)
            let (job, now) = (lease.job, clock())
            for key in keys where stored[key] != nil { links[job, default: []].insert(key) }
            jobs[index].done = links[job]?.count ?? 0
            jobs[index].planned = planned
            jobs[index].updated = now
        }
    }

    public func finish(
        _ lease: Lease, state: JobState, error: String?, attempts: Int, retrySeconds: Double?
    ) async throws(StoreError) {
        try locked { () throws(StoreError) in
            let index = try held(lease)
            let now = clock()
            jobs[index].state = state
            jobs[index].error = error
            jobs[index].attempts = attempts
            jobs[index].notBefore = retrySeconds.map { now.addingTimeInterval($0) }
            jobs[index].leaseUntil = nil
            jobs[index].updated = now
        }
    }

    public func counts() async throws(StoreError) -> StoreCounts {
        try locked { () throws(StoreError) in
            StoreCounts(
                jobs: Dictionary(grouping: jobs, by: \.state.rawValue).mapValues(\.count),
                checkpoints: checkpoints.count, results: stored.count,
                changed: (checkpoints.map(\.updated) + jobs.map(\.updated)).max())
        }
    }

    public func status(run: String?) async throws(StoreError) -> StoreStatus {
        try locked { () throws(StoreError) in
            guard let run else { return StoreStatus(checkpoints: checkpoints, jobs: jobs, results: stored.count) }
            let versions = checkpoints.filter { $0.run == run }
            let ids = Set(versions.map(\.id))
            return StoreStatus(
                checkpoints: versions, jobs: jobs.filter { ids.contains($0.checkpointID) }, results: stored.count)
        }
    }

    public func runs(named: String?) async throws(StoreError) -> [RunSummary] {
        try await status(run: named).summaries
    }

    public func unsettled() async throws(StoreError) -> StoreStatus { try await status(run: nil).unsettled }

    public func results(run: String?, checkpoint only: Int64?) async throws(StoreError) -> [ResultRow] {
        try locked { () throws(StoreError) in
            let byID = Dictionary(uniqueKeysWithValues: checkpoints.map { ($0.id, $0) })
            var rows: [ResultRow] = []
            var seen = Set<String>()
            for job in jobs.sorted(by: { $0.id < $1.id }) {
                guard let checkpoint = byID[job.checkpointID], run == nil || checkpoint.run == run,
                    only == nil || checkpoint.id == only
                else { continue }
                for key in (links[job.id] ?? []).sorted() {
                    guard let result = stored[key], seen.insert("\(checkpoint.id)|\(key)").inserted else { continue }
                    rows.append(
                        ResultRow(
                            checkpointID: checkpoint.id, run: checkpoint.run, checkpoint: checkpoint.path,
                            step: checkpoint.step,
                            checkpointState: checkpoint.state, settingsHash: job.settingsHash, result: result))
                }
            }
            return rows.sorted(by: ResultRow.listingOrder)
        }
    }
}

extension CheckpointRecord {
    /// Whether this version is the one at its path now (complete or not): not replaced, gone or overwritten.
    public var isLive: Bool { state != .replaced && state != .gone && state != .overwritten }
}

extension ResultRow {
    /// By run, step, path, series, then length.
    static func listingOrder(_ a: ResultRow, _ b: ResultRow) -> Bool {
        (a.run, a.step ?? -1, a.checkpoint, a.result.series, a.result.length)
            < (b.run, b.step ?? -1, b.checkpoint, b.result.series, b.result.length)
    }
}

extension String {
    /// Whether this path is `root` or below it.
    func isInside(_ root: String) -> Bool {
        self == root || hasPrefix(root.hasSuffix("/") ? root : root + "/")
    }
}
