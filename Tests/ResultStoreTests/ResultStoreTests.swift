import Evaluation
import Foundation
import ResultStore
import TestSupport
import Testing

/// Both stores behave the same: every test runs on the SQLite store and the in-memory one.
enum StoreKind: String, CaseIterable, CustomTestStringConvertible {
    case sqlite, memory
    var testDescription: String { rawValue }

    func make(_ scratch: ScratchFolder) throws -> any ResultStore {
        switch self {
        case .sqlite: try SQLiteStore(writingTo: scratch.path("store/results.sqlite"))
        case .memory: MemoryStore()
        }
    }
}

func sighting(
    _ path: String, run: String = "alibi", step: Int? = 1, hash: String = "xxh64:1", state: CheckpointState = .current
) -> Sighting {
    Sighting(
        run: run, runFolder: "/runs/\(run)", path: path, step: step, scheme: "step-N.safetensors", size: 10,
        modified: 1, contentHash: hash, state: state)
}

let settings = EvaluationSettings(data: DataReference(path: "/data/valid.tokens.zst", checksum: "xxh64:d"))

func result(_ hash: String, length: Int, perplexity: Double = 5, outcome: ResultOutcome = .evaluated) -> ResultRecord {
    let summary = CheckpointSummary(
        checkpoint: "/runs/alibi/x", name: .init(run: "alibi", step: 1, scheme: .plain), architecture: "a",
        architectureHash: "sha256:a", trainedLength: 64)
    var point = SweepPoint(checkpoint: summary, series: "nonoverlapping", length: length, result: nil, interval: nil)
    point.perplexity = perplexity
    let key = ResultKey(
        contentHash: hash, architectureHash: "sha256:a", scoringHash: "sha256:s", series: "nonoverlapping",
        length: length, engineVersion: "engine-1")
    return ResultRecord(
        key: key, outcome: outcome, point: point, memoryEstimate: outcome == .skipped ? 100 : nil, started: Date(),
        finished: Date())
}

@Suite struct ResultStoreBehaviour {
    @Test(arguments: StoreKind.allCases) func versionsOfOnePath(kind: StoreKind) throws {
        let scratch = try ScratchFolder("store")
        defer { scratch.remove() }
        let store = try kind.make(scratch)
        let first = try store.register(sighting("/runs/alibi/step-1.safetensors"), at: Date())
        #expect(first.isNew)
        let again = try store.register(sighting("/runs/alibi/step-1.safetensors"), at: Date())
        #expect(!again.isNew && again.record.id == first.record.id)
        let job = try #require(try store.ensureJob(checkpoint: first.record.id, settings: settings, at: Date()))
        #expect(try store.ensureJob(checkpoint: first.record.id, settings: settings, at: Date()) == nil)
        // Rewritten in place: a new version; the old one and its pending job are replaced.
        let rewritten = try store.register(sighting("/runs/alibi/step-1.safetensors", hash: "xxh64:2"), at: Date())
        #expect(rewritten.isNew && rewritten.record.id != first.record.id)
        let status = try store.status()
        #expect(status.checkpoints.first { $0.id == first.record.id }?.state == .replaced)
        #expect(status.jobs.first { $0.id == job.id }?.state == .replaced)
        #expect(try store.claim(at: Date()) == nil, "a replaced version's job is never handed out")
    }

    @Test(arguments: StoreKind.allCases) func newestOfEachRunFirstThenBackfill(kind: StoreKind) throws {
        let scratch = try ScratchFolder("store")
        defer { scratch.remove() }
        let store = try kind.make(scratch)
        let start = Date()
        for (offset, (run, step)) in [("a", 1), ("a", 2), ("a", 3), ("b", 10), ("b", 20)].enumerated() {
            let record = try store.register(
                sighting("/runs/\(run)/step-\(step).safetensors", run: run, step: step, hash: "xxh64:\(run)\(step)"),
                at: start.addingTimeInterval(Double(offset))
            ).record
            _ = try store.ensureJob(checkpoint: record.id, settings: settings, at: start)
        }
        var order: [String] = []
        while let claimed = try store.claim(at: Date()) {
            order.append("\(claimed.checkpoint.run)\(claimed.checkpoint.step ?? -1)")
            try store.finish(
                job: claimed.job.id, state: .done, error: nil, attempts: 0, notBefore: nil, at: Date())
        }
        #expect(order == ["a3", "b20", "a2", "b10", "a1"])
    }

    @Test(arguments: StoreKind.allCases) func aResultIsWrittenOnce(kind: StoreKind) throws {
        let scratch = try ScratchFolder("store")
        defer { scratch.remove() }
        let store = try kind.make(scratch)
        let version = try store.register(sighting("/runs/alibi/step-1.safetensors"), at: Date()).record
        let job = try #require(try store.ensureJob(checkpoint: version.id, settings: settings, at: Date()))
        try store.record(result("xxh64:1", length: 64, perplexity: 5), job: job.id, planned: 2, at: Date())
        try store.record(result("xxh64:1", length: 64, perplexity: 9), job: job.id, planned: 2, at: Date())
        let stored = try store.results(forKeys: [result("xxh64:1", length: 64).key])
        #expect(stored.count == 1 && stored.values.first?.point.perplexity == 5, "the first result stands")
        // A length skipped for memory is replaced once it is evaluated.
        try store.record(result("xxh64:1", length: 128, outcome: .skipped), job: job.id, planned: 2, at: Date())
        try store.record(result("xxh64:1", length: 128, perplexity: 7), job: job.id, planned: 2, at: Date())
        let replaced = try store.results(forKeys: [result("xxh64:1", length: 128).key]).values.first
        #expect(replaced?.outcome == .evaluated && replaced?.point.perplexity == 7)
        let progress = try store.status().jobs.first { $0.id == job.id }
        #expect(progress?.done == 2 && progress?.planned == 2)
        #expect(try store.status().results == 2)
    }

    @Test(arguments: StoreKind.allCases) func aCopyIsListedUnderBothPaths(kind: StoreKind) throws {
        let scratch = try ScratchFolder("store")
        defer { scratch.remove() }
        let store = try kind.make(scratch)
        let original = try store.register(sighting("/runs/alibi/step-1.safetensors"), at: Date()).record
        let copy = try store.register(sighting("/runs/copy/step-1.safetensors", run: "copy"), at: Date()).record
        let first = try #require(try store.ensureJob(checkpoint: original.id, settings: settings, at: Date()))
        let second = try #require(try store.ensureJob(checkpoint: copy.id, settings: settings, at: Date()))
        try store.record(result("xxh64:1", length: 64), job: first.id, planned: 1, at: Date())
        try store.link(keys: [result("xxh64:1", length: 64).key], job: second.id, planned: 1, at: Date())
        #expect(try store.results(run: nil).map(\.run) == ["alibi", "copy"])
        #expect(try store.results(run: "copy").map(\.checkpoint) == ["/runs/copy/step-1.safetensors"])
        #expect(try store.status().results == 1, "one computation")
    }

    @Test(arguments: StoreKind.allCases) func goneAndInterrupted(kind: StoreKind) throws {
        let scratch = try ScratchFolder("store")
        defer { scratch.remove() }
        let store = try kind.make(scratch)
        let kept = try store.register(sighting("/runs/alibi/step-1.safetensors"), at: Date()).record
        let lost = try store.register(sighting("/runs/alibi/step-2.safetensors", step: 2, hash: "xxh64:2"), at: Date())
            .record
        let job = try #require(try store.ensureJob(checkpoint: lost.id, settings: settings, at: Date()))
        _ = try store.ensureJob(checkpoint: kept.id, settings: settings, at: Date())
        let claimed = try #require(try store.claim(at: Date()))
        #expect(claimed.job.id == job.id, "step 2 is the newest")
        #expect(try store.requeueRunning(at: Date()) == 1)
        let marked = try store.markGone(under: "/runs", present: [kept.path], at: Date())
        #expect(marked.map(\.path) == [lost.path])
        #expect(try store.status().jobs.first { $0.id == job.id }?.state == .gone)
        #expect(try store.claim(at: Date())?.checkpoint.id == kept.id)
    }

    @Test(arguments: StoreKind.allCases) func aVersionThatComesBackResumes(kind: StoreKind) throws {
        let scratch = try ScratchFolder("store")
        defer { scratch.remove() }
        let store = try kind.make(scratch)
        let path = "/runs/alibi/step-1.safetensors"
        let first = try store.register(sighting(path), at: Date()).record
        let job = try #require(try store.ensureJob(checkpoint: first.id, settings: settings, at: Date()))
        _ = try store.markGone(under: "/runs", present: [], at: Date())
        #expect(try store.claim(at: Date()) == nil)
        // The filesystem is back: the same bytes at the same path are the live version again, and the job resumes.
        let back = try store.register(sighting(path), at: Date())
        #expect(!back.isNew && back.record.state == .current)
        #expect(try store.claim(at: Date())?.job.id == job.id)
        try store.finish(job: job.id, state: .done, error: nil, attempts: 0, notBefore: nil, at: Date())
        // Rewritten, then rewritten back to the first bytes: the first version is live, the second replaced.
        let second = try store.register(sighting(path, hash: "xxh64:2"), at: Date()).record
        _ = try store.register(sighting(path), at: Date())
        let states = Dictionary(uniqueKeysWithValues: try store.status().checkpoints.map { ($0.id, $0.state) })
        #expect(states == [first.id: .current, second.id: .replaced])
        #expect(try store.liveVersion(path: path)?.id == first.id)
    }

    @Test(arguments: StoreKind.allCases) func retriesWaitForTheirTime(kind: StoreKind) throws {
        let scratch = try ScratchFolder("store")
        defer { scratch.remove() }
        let store = try kind.make(scratch)
        let version = try store.register(sighting("/runs/alibi/step-1.safetensors"), at: Date()).record
        let job = try #require(try store.ensureJob(checkpoint: version.id, settings: settings, at: Date()))
        let now = Date()
        try store.finish(
            job: job.id, state: .pending, error: "EIO", attempts: 1, notBefore: now.addingTimeInterval(60), at: now)
        #expect(try store.claim(at: now) == nil)
        #expect(try store.claim(at: now.addingTimeInterval(61))?.job.attempts == 1)
    }
}

@Suite struct SQLiteStoreFiles {
    @Test func oneWriterManyReaders() throws {
        let scratch = try ScratchFolder("store")
        defer { scratch.remove() }
        let path = scratch.path("results.sqlite")
        let writer = try SQLiteStore(writingTo: path)
        let version = try writer.register(sighting("/runs/alibi/step-1.safetensors"), at: Date()).record
        let refusal = #expect(throws: StoreError.self) { try SQLiteStore(writingTo: path) }
        if case .locked(_, let holder) = refusal {
            #expect(holder.contains("pid \(getpid())"), "the message names the holder: \(holder)")
        } else {
            Issue.record("expected .locked, got \(String(describing: refusal))")
        }
        let reader = try SQLiteStore(readingFrom: path)
        #expect(try reader.status().checkpoints.map(\.id) == [version.id])
        #expect(throws: StoreError.self) { try reader.register(sighting("/x"), at: Date()) }
        _ = try writer.ensureJob(checkpoint: version.id, settings: settings, at: Date())
        #expect(try reader.status().jobs.count == 1, "a reader sees what the writer committed")
    }

    @Test func aMissingStoreSaysWhatToDo() throws {
        do {
            _ = try SQLiteStore(readingFrom: "/nonexistent/results.sqlite")
            Issue.record("opened a store that does not exist")
        } catch {
            #expect(error.description.contains("extrapolate watch"))
        }
    }

    @Test func everythingSurvivesReopening() throws {
        let scratch = try ScratchFolder("store")
        defer { scratch.remove() }
        let path = scratch.path("results.sqlite")
        var job: JobRecord
        do {
            let store = try SQLiteStore(writingTo: path)
            let version = try store.register(sighting("/runs/alibi/step-1.safetensors"), at: Date()).record
            job = try #require(try store.ensureJob(checkpoint: version.id, settings: settings, at: Date()))
            try store.record(result("xxh64:1", length: 64, perplexity: 4.5), job: job.id, planned: 1, at: Date())
        }
        let store = try SQLiteStore(writingTo: path)
        let rows = try store.results(run: "alibi")
        #expect(rows.count == 1 && rows.first?.result.point.perplexity == 4.5)
        #expect(try store.status().jobs.first?.settings == settings)
    }

    @Test func aFullDiskLosesNothingWritten() throws {
        let scratch = try ScratchFolder("store")
        defer { scratch.remove() }
        let path = scratch.path("results.sqlite")
        do {
            let store = try SQLiteStore(writingTo: path)
            _ = try store.register(sighting("/runs/alibi/step-1.safetensors"), at: Date())
        }
        let pages = try #require(
            (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int).map { $0 / 4096 + 4 })
        let store = try SQLiteStore(writingTo: path, maximumPages: pages)
        let version = try #require(try store.status().checkpoints.first)
        let job = try #require(try store.ensureJob(checkpoint: version.id, settings: settings, at: Date()))
        var written = 0
        var failure: StoreError?
        for length in 1...2000 {
            do {
                try store.record(result("xxh64:1", length: length), job: job.id, planned: 2000, at: Date())
                written += 1
            } catch {
                failure = error
                break
            }
        }
        let error = try #require(failure, "the capped store never filled")
        #expect(error.description.contains("full"), "\(error)")
        #expect(try store.status().results == written, "every result before the failure is intact")
        #expect(try store.status().jobs.first?.done == written)
    }
}

@Suite struct DefaultLocation {
    @Test func followsXDG() {
        #expect(
            StoreLocation.defaultPath(environment: ["XDG_STATE_HOME": "/s", "HOME": "/h"])
                == "/s/extrapolate/results.sqlite")
        #expect(StoreLocation.defaultPath(environment: ["HOME": "/h"]) == "/h/.local/state/extrapolate/results.sqlite")
        #expect(
            StoreLocation.defaultPath(environment: ["EXTRAPOLATE_STORE": "/e.sqlite", "HOME": "/h"]) == "/e.sqlite")
    }
}

@Suite struct StoreKeepsOnlyWhatDescribesTheDisk {
    @Test(
        "A version that was never complete leaves no record once it completes or disappears",
        arguments: StoreKind.allCases)
    func neverCompleteVersionsAreDropped(kind: StoreKind) throws {
        let scratch = try ScratchFolder("store")
        defer { scratch.remove() }
        let store = try kind.make(scratch)
        let path = "/runs/alibi/step-1.safetensors"
        _ = try store.register(sighting(path, hash: "incomplete:1", state: .incomplete), at: Date())
        let whole = try store.register(sighting(path, hash: "xxh64:whole"), at: Date()).record
        let listed = try store.status().checkpoints.filter { $0.path == path }
        #expect(listed.map(\.contentHash) == ["xxh64:whole"] && listed.map(\.state) == [.current])
        // A malformed file that is deleted: nothing on disk, nothing listed. A complete one that is deleted stays
        // as `gone` (its results are history).
        let bad = try store.register(
            sighting("/runs/alibi/step-2.safetensors", step: 2, hash: "invalid:2", state: .invalid), at: Date()
        ).record
        let gone = try store.markGone(under: "/runs/alibi", present: [], at: Date())
        #expect(try store.status().checkpoints.allSatisfy { $0.state != .invalid })
        #expect(try store.status().checkpoints.first { $0.id == whole.id }?.state == .gone)
        #expect(Set(gone.map(\.id)) == [bad.id, whole.id])
    }

    @Test(
        "Jobs of settings no longer configured are cancelled at a start, and taken up again if they come back",
        arguments: StoreKind.allCases)
    func staleJobsAreCancelled(kind: StoreKind) throws {
        let scratch = try ScratchFolder("store")
        defer { scratch.remove() }
        let store = try kind.make(scratch)
        let record = try store.register(sighting("/runs/alibi/step-1.safetensors"), at: Date()).record
        var typo = settings
        typo.data = DataReference(path: "/data/vaild.tokens.zst")
        let stale = try #require(try store.ensureJob(checkpoint: record.id, settings: typo, at: Date()))
        let fixed = try #require(try store.ensureJob(checkpoint: record.id, settings: settings, at: Date()))
        #expect(try store.cancelJobs(notIn: [settings.contentHash], at: Date()) == 1)
        var jobs = try store.status().jobs
        #expect(jobs.first { $0.id == stale.id }?.state == .cancelled)
        #expect(jobs.first { $0.id == fixed.id }?.state == .pending)
        #expect(try store.claim(at: Date())?.job.id == fixed.id, "a cancelled job is never handed out")
        #expect(try store.claim(at: Date()) == nil)
        let again = try #require(try store.ensureJob(checkpoint: record.id, settings: typo, at: Date()))
        jobs = try store.status().jobs
        #expect(again.id == stale.id && jobs.first { $0.id == stale.id }?.state == .pending)
    }
}
