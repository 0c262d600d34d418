import Checkpoints
import Evaluation
import Foundation
import ResultStore
import TestSupport
import Testing

@testable import Service

/// Bad checkpoints, a deleted run, a full disk: each recorded, none stopping the daemon or losing a result.
@Suite(.serialized) struct DaemonAgainstBadInput {
    let demo = try! Data(contentsOf: URL(fileURLWithPath: Repository.demo("alibi", step: 500)))

    func place(_ source: String, at path: String) throws {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: source, toPath: path)
    }

    @Test func badFilesAreRecordedOnceAndTheRestIsEvaluated() async throws {
        let scratch = try ScratchFolder("bad")
        defer { scratch.remove() }
        let runs = scratch.path("runs")
        try FileManager.default.createDirectory(atPath: "\(runs)/bad", withIntermediateDirectories: true)
        // Truncated: the header promises more bytes than there are.
        try demo.prefix(demo.count / 2).write(to: URL(fileURLWithPath: "\(runs)/bad/step-1.safetensors"))
        // A header whose offsets leave a hole, although the last offset matches the length.
        var (json, data) = try SafetensorsBytes.header(of: demo)
        let name = try #require(json.keys.sorted().first { $0 != "__metadata__" })
        var entry = try #require(json[name] as? [String: Any])
        let offsets = try #require(entry["data_offsets"] as? [Int])
        entry["data_offsets"] = [offsets[0] + 8, offsets[1]]
        json[name] = entry
        try SafetensorsBytes.assemble(json, data: data).write(
            to: URL(fileURLWithPath: "\(runs)/bad/step-2.safetensors"))
        // A config.json of a family no importer knows.
        try place("\(Repository.model("gpt2"))/model.safetensors", at: "\(runs)/bad/checkpoint-3/model.safetensors")
        try #"{"model_type": "mamba", "vocab_size": 96, "d_model": 32}"#.write(
            toFile: "\(runs)/bad/checkpoint-3/config.json", atomically: true, encoding: .utf8)
        // Learned positions (256) asked for 16×.
        for file in ["config.json", "model.safetensors"] {
            try place("\(Repository.model("gpt2"))/\(file)", at: "\(runs)/learned/checkpoint-4/\(file)")
        }
        try place(Repository.demo("alibi", step: 500), at: "\(runs)/good/step-5.safetensors")
        // An older Hugging Face folder with PyTorch weights only: listed, with what to do, not silently ignored.
        try place("\(Repository.model("gpt2"))/config.json", at: "\(runs)/bad/checkpoint-6/config.json")
        try Data(count: 64).write(to: URL(fileURLWithPath: "\(runs)/bad/checkpoint-6/pytorch_model.bin"))
        data = Data()

        let tokens = scratch.path("tokens.u16")
        try randomTokens(tokens)
        var configuration = DaemonConfiguration(
            targets: [
                WatchTarget(folder: runs, settings: try quickSettings(data: Repository.kjvValidation)),
                WatchTarget(
                    folder: "\(runs)/learned", settings: try quickSettings(data: tokens, lengths: "1x,16x", budget: 64)
                ),
                WatchTarget(folder: "\(runs)/bad", settings: try quickSettings(data: tokens, budget: 64)),
            ], store: scratch.path("results.sqlite"))
        configuration.quietSeconds = 0
        let store = try SQLiteStore(writingTo: configuration.store)
        let summary = try await Daemon(configuration: configuration, store: store, logger: .quiet).runOnce()
        #expect(summary.finished == ["done": 2, "failed": 1])

        let status = try await store.status()
        func version(_ suffix: String) throws -> CheckpointRecord {
            try #require(status.checkpoints.last { $0.path.hasSuffix(suffix) }, "\(suffix)")
        }
        let truncated = try version("bad/step-1.safetensors")
        #expect(truncated.state == .incomplete && truncated.reason?.contains("truncated") == true)
        let lying = try version("bad/step-2.safetensors")
        #expect(lying.state == .invalid && lying.reason?.contains(name) == true, "\(lying.reason ?? "")")
        let pickle = try version("bad/checkpoint-6")
        #expect(pickle.state == .invalid && pickle.reason?.contains("neither a zip") == true, "\(pickle.reason ?? "")")
        let unknown = try version("bad/checkpoint-3")
        let failed = try #require(status.jobs.first { $0.checkpointID == unknown.id })
        #expect(failed.state == .failed && failed.error?.contains("mamba") == true, "\(failed.error ?? "")")
        let learned = try await store.results(run: "learned")
        #expect(learned.map(\.result.outcome) == [.evaluated, .unsupported])
        #expect(learned.last?.result.reason?.contains("256") == true, "\(learned.last?.result.reason ?? "")")
        #expect(try await store.results(run: "good").count == 2)

        // A second pass changes nothing: a failure is not retried until its files change.
        let again = try await Daemon(configuration: configuration, store: store, logger: .quiet).runOnce()
        #expect(again.finished.isEmpty)
        #expect(try await store.status().jobs.first { $0.id == failed.id }?.attempts == 1)
        // Fixing the config is a new version, evaluated.
        try FileManager.default.removeItem(atPath: "\(runs)/bad/checkpoint-3/config.json")
        try FileManager.default.copyItem(
            atPath: "\(Repository.model("gpt2"))/config.json", toPath: "\(runs)/bad/checkpoint-3/config.json")
        let fixed = try await Daemon(configuration: configuration, store: store, logger: .quiet).runOnce()
        #expect(fixed.finished == ["done": 1])
        #expect(try await store.results(run: "bad").count == 2)
        // Its bytes are learned/checkpoint-4's: the 1× result is shared, only 2× is new.
        #expect(try await store.status().results == 2 + 2 + 1, "no earlier result lost or repeated")
    }

    @Test func aConfigKeyThatChangesTheModelIsRecordedAsAFailureUnlessTheRunAllowsIt() async throws {
        let scratch = try ScratchFolder("keys")
        defer { scratch.remove() }
        let runs = scratch.path("runs")
        for run in ["strict", "allowed"] {
            let folder = "\(runs)/\(run)/checkpoint-10"
            try place(Repository.model("llama-bytes"), at: folder)
            let url = URL(fileURLWithPath: folder + "/config.json")
            var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
            object["attn_logit_softcapping"] = 50.0
            object["frobnication_depth"] = 3
            try JSONSerialization.data(withJSONObject: object).write(to: url)
        }
        let tokens = scratch.path("tokens.u16")
        try randomTokens(tokens)
        var allowed = try quickSettings(data: tokens, lengths: "1x", budget: 128)
        allowed.allowUnknownConfigKeys = true
        var configuration = DaemonConfiguration(
            targets: [
                WatchTarget(
                    folder: "\(runs)/strict", settings: try quickSettings(data: tokens, lengths: "1x", budget: 128)),
                WatchTarget(folder: "\(runs)/allowed", settings: allowed),
            ], store: scratch.path("results.sqlite"))
        configuration.quietSeconds = 0
        let store = try SQLiteStore(writingTo: configuration.store)
        let summary = try await Daemon(configuration: configuration, store: store, logger: .quiet).runOnce()
        #expect(summary.finished == ["done": 1, "failed": 1])
        let status = try await store.status()
        let strict = try #require(status.checkpoints.first { $0.path.contains("/strict/") })
        let failed = try #require(status.jobs.first { $0.checkpointID == strict.id })
        #expect(
            failed.state == .failed && failed.error?.contains("'attn_logit_softcapping' = 50") == true
                && failed.error?.contains("allow-unknown-config-keys = true") == true, "\(failed.error ?? "")")
        let results = try await store.results(run: "allowed")
        #expect(results.count == 1)
        let point = try #require(results.first?.result.point)
        #expect(point.configNotRead == ["attn_logit_softcapping = 50", "frobnication_depth = 3"])
        #expect(point.warnings.contains { $0.contains("attn_logit_softcapping") })
    }

    @Test func aRunDeletedMidEvaluationIsGoneNotFailed() async throws {
        let scratch = try ScratchFolder("deleted")
        defer { scratch.remove() }
        let runs = scratch.path("runs")
        try place(Repository.demo("alibi", step: 500), at: "\(runs)/doomed/step-1.safetensors")
        var configuration = DaemonConfiguration(
            targets: [
                WatchTarget(
                    folder: runs,
                    settings: try quickSettings(
                        data: Repository.kjvValidation, lengths: "1x,2x,4x,8x,16x", budget: 60_000))
            ], store: scratch.path("results.sqlite"))
        configuration.quietSeconds = 0
        configuration.rescanSeconds = 0.5
        let store = try SQLiteStore(writingTo: configuration.store)
        let daemon = RunningDaemon(configuration, store: store)
        try await waitUntil(30, "the first length is stored") {
            try await store.status().jobs.first.map { $0.state == .running && $0.done >= 1 } ?? false
        }
        try FileManager.default.removeItem(atPath: "\(runs)/doomed")
        try await waitUntil(60, "the job ends") {
            try await store.status().jobs.first.map { $0.state != .running } ?? false
        }
        // The daemon goes on: a new run is evaluated.
        try place(Repository.demo("alibi", step: 1000), at: "\(runs)/next/step-2.safetensors")
        try await waitUntil(60, "the next run is evaluated") {
            try await store.status().jobs.contains { $0.state == .done }
        }
        try await daemon.stop()
        let status = try await store.status()
        let doomed = try #require(status.jobs.first)
        #expect(doomed.state == .gone && doomed.error == nil)
        #expect(status.checkpoints.first?.state == .gone)
        #expect(doomed.done >= 1 && doomed.done < 5, "the results stored before the deletion are kept")
        #expect(try await store.results(run: "doomed").count == doomed.done)
    }

    @Test func aFullDiskIsSurvivedAndNothingIsLost() async throws {
        let scratch = try ScratchFolder("full")
        defer { scratch.remove() }
        let runs = scratch.path("runs")
        for step in [1, 2, 3] {
            try place(
                Repository.demo("alibi", step: [500, 1000, 2000][step - 1]), at: "\(runs)/a/step-\(step).safetensors")
        }
        var configuration = DaemonConfiguration(
            targets: [
                WatchTarget(
                    folder: runs,
                    settings: try quickSettings(
                        data: Repository.kjvValidation, lengths: "1x,2x,4x,8x,16x", budget: 2048))
            ], store: scratch.path("results.sqlite"))
        configuration.quietSeconds = 0
        configuration.retrySeconds = 0.2
        // A store that fills up after the checkpoints and a few results: SQLite says "database or disk is full".
        do {
            let store = try SQLiteStore(writingTo: configuration.store, maximumPages: 18)
            let daemon = RunningDaemon(configuration, store: store)
            try await Task.sleep(for: .seconds(4))
            try await daemon.stop()
            let status = try await store.status()
            #expect(status.results < 15, "the cap was too generous to fill")
        }
        let stored = try await SQLiteStore(readingFrom: configuration.store).results(run: nil)
        // Room again: the rest is evaluated; what was stored before is kept, nothing twice.
        let store = try SQLiteStore(writingTo: configuration.store)
        _ = try await Daemon(configuration: configuration, store: store, logger: .quiet).runOnce()
        let status = try await store.status()
        #expect(status.results == 15)
        #expect(status.jobs.allSatisfy { $0.state == .done && $0.done == 5 })
        let after = try await store.results(run: nil)
        for row in stored {
            #expect(after.contains { $0.result.key == row.result.key && $0.result.finished == row.result.finished })
        }
    }

    @Test func lengthsOverTheMemoryLimitAreSkippedUntilItAllowsThem() async throws {
        let scratch = try ScratchFolder("memory")
        defer { scratch.remove() }
        try place(Repository.demo("alibi", step: 500), at: scratch.path("runs/a/step-1.safetensors"))
        var configuration = DaemonConfiguration(
            targets: [
                WatchTarget(folder: scratch.path("runs"), settings: try quickSettings(data: Repository.kjvValidation))
            ], store: scratch.path("results.sqlite"))
        configuration.quietSeconds = 0
        let store = try SQLiteStore(writingTo: configuration.store)
        let model = try SweepCheckpoint.load(scratch.path("runs/a/step-1.safetensors")).model
        // Between the estimates at 64 and 128 tokens.
        let (small, large) = (
            model.memoryEstimate(length: 64, threads: 2), model.memoryEstimate(length: 128, threads: 2)
        )
        #expect(small < large)
        configuration.threads = 2
        configuration.memoryLimit = (small + large) / 2
        _ = try await Daemon(configuration: configuration, store: store, logger: .quiet).runOnce()
        let rows = try await store.results(run: "a")
        #expect(rows.map(\.result.outcome) == [.evaluated, .skipped])
        #expect(rows.last?.result.memoryEstimate == large)
        #expect(rows.last?.result.reason?.contains("--memory-limit") == true)
        // A higher limit: the next start evaluates what was skipped, and only that.
        configuration.memoryLimit = large * 2
        _ = try await Daemon(configuration: configuration, store: store, logger: .quiet).runOnce()
        let after = try await store.results(run: "a")
        #expect(Set(after.map(\.result.outcome)) == [.evaluated])
        #expect(try await store.status().results == 2)
        #expect(after.first?.result.finished == rows.first?.result.finished, "the 64-token result was not redone")
    }

    @Test func missingDataIsRetriedWithBackoffAndAtTheNextStart() async throws {
        let scratch = try ScratchFolder("data")
        defer { scratch.remove() }
        try place(Repository.demo("alibi", step: 500), at: scratch.path("runs/a/step-1.safetensors"))
        let data = scratch.path("later/valid.tokens.zst")
        var configuration = DaemonConfiguration(
            targets: [WatchTarget(folder: scratch.path("runs"), settings: try quickSettings(data: data))],
            store: scratch.path("results.sqlite"))
        configuration.quietSeconds = 0
        let store = try SQLiteStore(writingTo: configuration.store)
        let started = Date()
        let first = try await Daemon(configuration: configuration, store: store, logger: .quiet).runOnce()
        #expect(first.finished.isEmpty && first.pending == 1)
        let job = try #require(try await store.status().jobs.first)
        #expect(job.state == .pending && job.attempts == 1 && job.error?.contains("later/valid.tokens.zst") == true)
        #expect((job.notBefore ?? .distantPast) > started.addingTimeInterval(configuration.retrySeconds - 1))
        // The data arrives; a restart retries at once.
        try place(Repository.kjvValidation, at: data)
        let second = try await Daemon(configuration: configuration, store: store, logger: .quiet).runOnce()
        #expect(second.finished == ["done": 1])
    }

    @Test func aLengthAddedLaterIsTheOnlyOneEvaluated() async throws {
        let scratch = try ScratchFolder("grid")
        defer { scratch.remove() }
        try place(Repository.demo("alibi", step: 500), at: scratch.path("runs/a/step-1.safetensors"))
        try place(Repository.demo("t5", step: 500), at: scratch.path("runs/b/step-1.safetensors"))
        func configuration(_ lengths: String) throws -> DaemonConfiguration {
            var settings = try quickSettings(data: Repository.kjvValidation, lengths: lengths)
            settings.budget = nil  // the daemon's own span: the same for every grid up to 16x
            var configuration = DaemonConfiguration(
                targets: [WatchTarget(folder: scratch.path("runs"), settings: settings)],
                store: scratch.path("results.sqlite"))
            configuration.quietSeconds = 0
            return configuration
        }
        let store = try SQLiteStore(writingTo: scratch.path("results.sqlite"))
        _ = try await Daemon(configuration: try configuration("1x,2x"), store: store, logger: .quiet).runOnce()
        let before = try await store.results(run: nil)
        #expect(before.count == 4)
        _ = try await Daemon(configuration: try configuration("1x,2x,4x"), store: store, logger: .quiet).runOnce()
        let after = try await store.results(run: nil)
        #expect(try await store.status().results == 6, "two new results: 4x for each checkpoint")
        #expect(after.filter { $0.result.length == 256 }.count == 2)
        for row in before {
            #expect(after.contains { $0.result.key == row.result.key && $0.result.finished == row.result.finished })
        }
    }
}
