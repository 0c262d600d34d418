import Evaluation
import Foundation
import TestSupport
import Testing

@testable import ResultStore

/// The queue's order is kept in the database (`jobs.rank`, maintained as versions come, go and are rewritten, and
/// as jobs are requeued): every claim must still take the job `JobOrder.next` chooses from the whole store.
@Suite struct QueueOrder {
    /// SplitMix64: the same sequence of operations on every store and every run.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// The job `JobOrder.next` picks from everything the store holds now.
    func expectedNext(_ store: any ResultStore) async throws -> Int64? {
        let status = try await store.status()
        let byID = Dictionary(uniqueKeysWithValues: status.checkpoints.map { ($0.id, $0) })
        let ready = status.jobs.compactMap { job -> (job: Int64, checkpoint: CheckpointRecord, stage: Int)? in
            guard job.state == .pending, job.notBefore == nil, let version = byID[job.checkpointID],
                version.isEvaluable
            else { return nil }
            return (job.id, version, job.settings.task.queueStage)
        }
        return JobOrder.next(ready, current: status.checkpoints.filter(\.isEvaluable))
    }

    @Test(
        "400 random registrations, rewrites, removals, returns, snapshot releases, requeues and claims: every claim is JobOrder's choice",
        arguments: StoreKind.allCases)
    func storedRanksMatchTheReference(kind: StoreKind) async throws {
        let scratch = try ScratchFolder("queue-order")
        defer { scratch.remove() }
        let store = try await kind.make(scratch)
        var random = Seeded(state: 2026)
        let runs = ["a", "b", "c"]
        let other = EvaluationSettings(
            data: DataReference(path: "/data/other.tokens.zst", checksum: "xxh64:e"), budget: 128)
        let passkey = settings.passkeyJob(PasskeySettings(bytes: true))
        var hashes = 0
        var versions: [CheckpointRecord] = []
        var gone: [CheckpointRecord] = []
        var claims = 0
        var passkeyClaims = 0
        func claimAndCheck() async throws -> Bool {
            let expected = try await expectedNext(store)
            let claimed = try await store.claim(worker: "w", leaseSeconds: 600)
            #expect(claimed?.job.id == expected, "claim \(claims) on \(kind)")
            guard let claimed else { return false }
            claims += 1
            if claimed.job.settings.task == .passkey { passkeyClaims += 1 }
            let outcome = Int.random(in: 0..<10, using: &random)
            try await store.finish(
                claimed.lease, state: outcome < 6 ? .done : outcome < 8 ? .failed : .pending,
                error: outcome < 6 ? nil : "boom", attempts: 1, retrySeconds: nil)
            return true
        }
        for _ in 0..<400 {
            let run = runs.randomElement(using: &random)!
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<40:
                // A new version: a new path, or new bytes at a path already seen (some kept in a snapshot).
                let step: Int? =
                    Int.random(in: 0..<10, using: &random) == 0 ? nil : Int.random(in: 0..<12, using: &random)
                hashes += 1
                var seen = sighting(
                    "/runs/\(run)/step-\(step ?? -1).safetensors", run: run, step: step, hash: "xxh64:\(hashes)")
                if Int.random(in: 0..<3, using: &random) == 0 { seen.snapshot = "/snapshots/\(hashes)" }
                let record = try await store.register(seen).record
                versions.append(record)
                _ = try await store.ensureJob(checkpoint: record.id, settings: settings)
                // Half the versions get a passkey job too, queued after every perplexity job.
                if Bool.random(using: &random) {
                    _ = try await store.ensureJob(checkpoint: record.id, settings: passkey)
                }
            case 40..<60:
                _ = try await claimAndCheck()
            case 60..<66:
                let live = try await store.status().checkpoints.filter { $0.runFolder == "/runs/\(run)" && $0.isLive }
                guard let leaving = live.randomElement(using: &random) else { continue }
                gone += try await store.markGone(
                    under: "/runs/\(run)", present: Set(live.map(\.path)).subtracting([leaving.path]))
            case 66..<72:
                // A version that was gone comes back (remounted).
                guard let back = gone.popLast() else { continue }
                var seen = sighting(back.path, run: back.run, step: back.step, hash: back.contentHash)
                seen.runFolder = back.runFolder
                _ = try await store.register(seen)
            case 72..<80:
                guard let version = versions.randomElement(using: &random) else { continue }
                _ = try await store.requeue(checkpoint: version.id)
            case 80..<86:
                guard let version = versions.randomElement(using: &random) else { continue }
                _ = try await store.releaseSnapshot(checkpoint: version.id)
            case 86..<91:
                hashes += 1
                _ = try await store.register(
                    sighting(
                        "/runs/\(run)/partial-\(hashes).safetensors", run: run, step: 5, hash: "xxh64:\(hashes)",
                        state: .incomplete))
            default:
                // A second configuration's job on a version that can be evaluated.
                guard let version = versions.randomElement(using: &random), version.state == .current else { continue }
                _ = try await store.ensureJob(checkpoint: version.id, settings: other)
            }
        }
        while try await claimAndCheck() {}
        #expect(claims > 100, "the sequence exercised the queue (\(claims) claims)")
        #expect(passkeyClaims > 10, "passkey jobs were claimed too (\(passkeyClaims))")
    }

    @Test(
        "A length skipped for memory is reopened once the limit allows it, and its job queues in its run's order",
        arguments: StoreKind.allCases)
    func skippedLengthsReopen(kind: StoreKind) async throws {
        let scratch = try ScratchFolder("queue-reopen")
        defer { scratch.remove() }
        let store = try await kind.make(scratch)
        var versions: [CheckpointRecord] = []
        for step in [1, 2] {
            let version = try await store.register(
                sighting("/runs/alibi/step-\(step).safetensors", step: step, hash: "xxh64:\(step)")
            ).record
            _ = try await store.ensureJob(checkpoint: version.id, settings: settings)
            versions.append(version)
        }
        // Step 2 first: its 64 is skipped (an estimate of 100 bytes over the limit); then step 1, evaluated.
        let newest = try #require(try await store.claim(worker: "w", leaseSeconds: 60))
        #expect(newest.checkpoint.id == versions[1].id)
        try await store.record(result("xxh64:2", length: 64, outcome: .skipped), lease: newest.lease, planned: 1)
        try await store.finish(newest.lease, state: .done, error: nil, attempts: 0, retrySeconds: nil)
        #expect(try await store.reopenSkipped(fitting: 50) == 0, "100 bytes do not fit 50")
        #expect(try await store.reopenSkipped(fitting: 100) == 1)
        #expect(try await store.reopenSkipped(fitting: nil) == 0, "already pending")
        let again = try #require(try await store.claim(worker: "w", leaseSeconds: 60))
        #expect(again.checkpoint.id == versions[1].id, "the newest step goes before the older one, reopened or not")
    }

    /// `count` versions over four runs, each with a job; the first `done` of them claimed and finished.
    func fill(_ store: any ResultStore, from first: Int, count: Int, done: Int) async throws {
        for i in first..<(first + count) {
            let run = "r\(i % 4)"
            let record = try await store.register(
                sighting("/runs/\(run)/step-\(i).safetensors", run: run, step: i, hash: "xxh64:\(i)")
            ).record
            _ = try await store.ensureJob(checkpoint: record.id, settings: settings)
        }
        for _ in 0..<done {
            let claimed = try #require(try await store.claim(worker: "w", leaseSeconds: 600))
            try await store.finish(claimed.lease, state: .done, error: nil, attempts: 0, retrySeconds: nil)
        }
    }

    @Test("Finding the next job reads as much with 2,000 versions and jobs as with 50 (SQLite's own step count)")
    func sqliteClaimIsConstant() async throws {
        let scratch = try ScratchFolder("queue-cost")
        defer { scratch.remove() }
        let store = try SQLiteStore(writingTo: scratch.path("results.sqlite"))
        try await fill(store, from: 0, count: 50, done: 20)
        let small = try await store.nextJobQuerySteps()
        try await fill(store, from: 50, count: 1950, done: 1000)
        let large = try await store.nextJobQuerySteps()
        print("next-job query on SQLite: \(small) steps with 50 versions, \(large) with 2,000")
        #expect(small > 0)
        #expect(large <= small + small / 2, "the query reads rows in proportion to the store: \(small) → \(large)")
    }

    @Test(
        "Finding the next job reads as many rows with 2,000 versions and jobs as with 50 (PostgreSQL's EXPLAIN ANALYZE)",
        .enabled(if: TestPostgres.url != nil, "needs EXTRAPOLATE_TEST_POSTGRES"))
    func postgresClaimIsConstant() async throws {
        let store = try await PostgresStore(address: try PostgresAddress(url: try await TestPostgres.database()))
        try await fill(store, from: 0, count: 50, done: 20)
        let small = try await store.nextJobQueryRows()
        try await fill(store, from: 50, count: 1950, done: 1000)
        let large = try await store.nextJobQueryRows()
        print("next-job query on PostgreSQL: \(small) rows with 50 versions, \(large) with 2,000")
        // With few rows PostgreSQL may well read them all; with many it must read the first of the index.
        #expect(large > 0 && large <= 10, "the query reads rows in proportion to the store: \(small) → \(large)")
    }
}

/// The queries the page and `status` use instead of reading the whole store agree with the whole store.
@Suite struct ScopedQueries {
    /// Three runs: done, failed, pending, incomplete and gone versions, one with a second configuration's job.
    func filled(_ kind: StoreKind, _ scratch: ScratchFolder) async throws -> any ResultStore {
        let store = try await kind.make(scratch)
        for run in ["a", "b", "c"] {
            for step in 1...4 {
                let version = try await store.register(
                    sighting("/runs/\(run)/step-\(step).safetensors", run: run, step: step, hash: "xxh64:\(run)\(step)")
                ).record
                _ = try await store.ensureJob(checkpoint: version.id, settings: settings)
            }
            _ = try await store.register(
                sighting(
                    "/runs/\(run)/step-9.safetensors", run: run, step: 9, hash: "xxh64:\(run)9", state: .incomplete))
        }
        for (index, state) in [JobState.done, .failed, .done, .done, .pending, .done].enumerated() {
            let claimed = try #require(try await store.claim(worker: "w", leaseSeconds: 60))
            if state == .done {
                try await store.record(
                    result(claimed.checkpoint.contentHash, length: 64 + index), lease: claimed.lease, planned: 1)
            }
            try await store.finish(
                claimed.lease, state: state, error: state == .failed ? "boom" : nil, attempts: 1, retrySeconds: nil)
        }
        _ = try await store.markGone(
            under: "/runs/c",
            present: Set(try await store.status(run: "c").checkpoints.map(\.path)).subtracting([
                "/runs/c/step-1.safetensors"
            ]))
        return store
    }

    @Test(
        "runs() counts what status() holds; status(run:) and results(run:checkpoint:) hold exactly their part",
        arguments: StoreKind.allCases)
    func summariesAndScopes(kind: StoreKind) async throws {
        let scratch = try ScratchFolder("scoped")
        defer { scratch.remove() }
        let store = try await filled(kind, scratch)
        let whole = try await store.status()
        let counted = try await store.runs()
        let expected = whole.summaries
        func withoutTimes(_ runs: [RunSummary]) -> [RunSummary] {
            runs.map { run in
                var run = run
                run.changed = nil
                return run
            }
        }
        #expect(withoutTimes(counted) == withoutTimes(expected))
        #expect(counted.map(\.results).reduce(0, +) == 4, "one result per done job")
        for (run, summary) in zip(counted, expected) {
            let (a, b) = (try #require(run.changed), try #require(summary.changed))
            #expect(abs(a.timeIntervalSince(b)) < 0.001)
        }
        #expect(try await store.runs(named: "b") == counted.filter { $0.name == "b" })
        #expect(try await store.runs(named: "zzz").isEmpty)
        let b = try await store.status(run: "b")
        #expect(Set(b.checkpoints.map(\.run)) == ["b"] && b.checkpoints.count == 5)
        #expect(
            Set(b.jobs.map(\.checkpointID))
                == Set(
                    whole.jobs.filter { job in
                        b.checkpoints.contains { $0.id == job.checkpointID }
                    }.map(\.checkpointID)))
        let all = try await store.results(run: nil)
        #expect(all.count == 4)
        for row in all {
            #expect(
                try await store.results(run: nil, checkpoint: row.checkpointID).map(\.result.key) == [row.result.key])
            #expect(try await store.results(run: row.run, checkpoint: row.checkpointID).count == 1)
        }
        #expect(try await store.results(run: "zzz", checkpoint: all[0].checkpointID).isEmpty)
    }

    @Test(
        "unsettled() holds the versions status lists by default: not done, failed, incomplete; not done, gone",
        arguments: StoreKind.allCases)
    func unsettledVersions(kind: StoreKind) async throws {
        let scratch = try ScratchFolder("scoped")
        defer { scratch.remove() }
        let store = try await filled(kind, scratch)
        let whole = try await store.status()
        let shown = try await store.unsettled()
        let expected = whole.unsettled.checkpoints
        #expect(shown.checkpoints.map(\.id) == expected.map(\.id))
        #expect(shown.checkpoints.contains { $0.state == .incomplete })
        #expect(!shown.checkpoints.contains { $0.state == .gone }, "a gone version needs no look")
        #expect(shown.jobs.map(\.id) == whole.unsettled.jobs.map(\.id))
    }
}
