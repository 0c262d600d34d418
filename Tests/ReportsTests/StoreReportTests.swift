import Evaluation
import Foundation
import Reports
import ResultStore
import Testing

@Suite struct StoreReports {
    func sighting(_ path: String, step: Int, state: CheckpointState, reason: String? = nil) -> Sighting {
        Sighting(
            run: "alibi", runFolder: "/runs/alibi", path: path, step: step, scheme: "step-N.safetensors", size: 1,
            modified: 1, contentHash: "xxh64:\(step)", state: state, reason: reason)
    }

    @Test func statusShowsEveryStateWithItsReason() async throws {
        let store = MemoryStore()
        let settings = EvaluationSettings(data: DataReference(path: "/d.tokens.zst", checksum: "xxh64:d"))
        let done = try await store.register(sighting("/runs/alibi/step-1.safetensors", step: 1, state: .current))
        let failed = try await store.register(
            sighting("/runs/alibi/step-2.safetensors", step: 2, state: .current))
        _ = try await store.register(
            sighting(
                "/runs/alibi/step-3.safetensors", step: 3, state: .incomplete, reason: "truncated: 10 of 20 bytes"))
        _ = try #require(try await store.ensureJob(checkpoint: done.record.id, settings: settings))
        _ = try #require(try await store.ensureJob(checkpoint: failed.record.id, settings: settings))
        // Claimed newest first: step 2, then step 1.
        let second = try #require(try await store.claim(worker: "w", leaseSeconds: 60))
        let first = try #require(try await store.claim(worker: "w", leaseSeconds: 60))
        try await store.finish(first.lease, state: .done, error: nil, attempts: 0, retrySeconds: nil)
        try await store.finish(
            second.lease, state: .failed, error: "unknown model_type 'mamba'", attempts: 1, retrySeconds: nil)
        let report = StatusReport(try await store.status())
        let text = report.table()
        #expect(text.contains("alibi  (/runs/alibi)"))
        #expect(text.contains("done") && text.contains("failed") && text.contains("incomplete"))
        #expect(text.contains("unknown model_type 'mamba'") && text.contains("truncated: 10 of 20 bytes"))
        #expect(text.contains("jobs: 1 done, 1 failed; results stored: 0"))
        #expect(report.result.runs.first?.checkpoints.map(\.state) == ["done", "failed", "incomplete"])
        let decoded = try ReportJSON.decode(StatusReport.Result.self, from: Data(try report.json().utf8))
        #expect(decoded.runs.map(\.checkpoints.count) == [3] && decoded.queue == report.result.queue)
        let created = try #require(report.result.runs.first?.checkpoints.first?.jobs.first?.created)
        let roundTrip = try #require(decoded.runs.first?.checkpoints.first?.jobs.first?.created)
        #expect(abs(created.timeIntervalSince(roundTrip)) < 0.001, "dates keep milliseconds")
        // What `status` prints by default, from the versions that need a look and every run's counts, is what the
        // whole store gives: the done version counted, not listed.
        let short = StatusReport(try await store.unsettled(), summaries: try await store.runs()).table()
        #expect(short == text, "\(short)\n---\n\(text)")
        #expect(!short.contains("step-1.safetensors") && short.contains("1 done"))
        #expect(report.table(everyVersion: true).contains("step-1.safetensors"))
    }
}
