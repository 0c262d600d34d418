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

    @Test func statusShowsEveryStateWithItsReason() throws {
        let store = MemoryStore()
        let settings = EvaluationSettings(data: DataReference(path: "/d.tokens.zst", checksum: "xxh64:d"))
        let done = try store.register(sighting("/runs/alibi/step-1.safetensors", step: 1, state: .current), at: Date())
        let failed = try store.register(
            sighting("/runs/alibi/step-2.safetensors", step: 2, state: .current), at: Date())
        _ = try store.register(
            sighting(
                "/runs/alibi/step-3.safetensors", step: 3, state: .incomplete, reason: "truncated: 10 of 20 bytes"),
            at: Date())
        let first = try #require(try store.ensureJob(checkpoint: done.record.id, settings: settings, at: Date()))
        let second = try #require(try store.ensureJob(checkpoint: failed.record.id, settings: settings, at: Date()))
        try store.finish(job: first.id, state: .done, error: nil, attempts: 0, notBefore: nil, at: Date())
        try store.finish(
            job: second.id, state: .failed, error: "unknown model_type 'mamba'", attempts: 1, notBefore: nil, at: Date()
        )
        let report = StatusReport(try store.status())
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
    }
}
