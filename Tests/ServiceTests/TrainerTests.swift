import Checkpoints
import Evaluation
import Foundation
import ResultStore
import TestSupport
import Testing

@testable import Service

/// The daemon beside a trainer that writes checkpoints the ways real trainers do.
@Suite(.serialized) struct DaemonBesideATrainer {
    /// With inotify and rescans, and with rescans alone (what network filesystems get).
    @Test(arguments: [false, true]) func everyCompleteVersionOnceAndNothingIncomplete(pollOnly: Bool) async throws {
        let scratch = try ScratchFolder("trainer")
        defer { scratch.remove() }
        let runs = scratch.path("runs")
        let (alpha, beta, gamma) = (scratch.path("runs/alpha"), scratch.path("runs/beta"), scratch.path("runs/gamma"))
        for folder in [alpha, beta, gamma] {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        let tokens = scratch.path("tokens.u16")
        try randomTokens(tokens)
        var configuration = DaemonConfiguration(
            targets: [
                WatchTarget(folder: runs, settings: try quickSettings(data: Repository.kjvValidation)),
                WatchTarget(folder: beta, settings: try quickSettings(data: tokens)),
            ], store: scratch.path("store/results.sqlite"))
        configuration.quietSeconds = 0.4
        configuration.rescanSeconds = 1
        configuration.pollOnly = pollOnly
        let store = try SQLiteStore(writingTo: configuration.store)
        let daemon = RunningDaemon(configuration, store: store)

        func demo(_ method: String, _ step: Int) throws -> Data {
            try Data(contentsOf: URL(fileURLWithPath: Repository.demo(method, step: step)))
        }
        // Keep each complete version's bytes under its own name, to hash and sweep them afterwards.
        let expected = scratch.path("expected")
        try FileManager.default.createDirectory(atPath: expected, withIntermediateDirectories: true)
        try demo("alibi", 500).write(to: URL(fileURLWithPath: "\(expected)/step-100.safetensors"))

        // alpha: written in place, slowly; through a dot-file and a rename; through *.incomplete and a rename.
        try await Trainer.write(demo("alibi", 500), to: "\(alpha)/step-100.safetensors")
        try await Trainer.write(demo("alibi", 1000), to: "\(alpha)/.step-200.safetensors.tmp")
        try Trainer.rename("\(alpha)/.step-200.safetensors.tmp", "\(alpha)/step-200.safetensors")
        try await Trainer.write(demo("alibi", 2000), to: "\(alpha)/model-300.safetensors.incomplete")
        try Trainer.rename("\(alpha)/model-300.safetensors.incomplete", "\(alpha)/model-300.safetensors")
        // beta: Hugging Face's staging folder renamed into place; then a sharded checkpoint written in place, index
        // first, the last shard arriving last.
        try await Trainer.copy(
            ["config.json", "model.safetensors"], from: Repository.model("gpt2"), to: "\(beta)/tmp-checkpoint-10")
        try Trainer.rename("\(beta)/tmp-checkpoint-10", "\(beta)/checkpoint-10")
        let bloom = Repository.model("bloom-12h")
        let shards = (1...9).map { String(format: "model-%05d-of-00009.safetensors", $0) }
        try await Trainer.copy(
            ["model.safetensors.index.json", "config.json"] + shards.dropLast(), from: bloom,
            to: "\(beta)/checkpoint-20", pause: 0.02)
        try await Task.sleep(for: .seconds(1))  // longer than the quiet interval: the index waits for its shard
        try await Trainer.copy([shards[8]], from: bloom, to: "\(beta)/checkpoint-20")
        // beta/final: a plain checkpoint folder (what `score` reads), its config first, then the weights in pieces.
        try await Trainer.copy(
            ["config.json", "model.safetensors"], from: Repository.model("opt"), to: "\(beta)/final")
        // gamma: a copy of alpha's step 200 under another name: nothing is computed again.
        try await Trainer.write(demo("alibi", 1000), to: "\(gamma)/step-100.safetensors")

        // alpha's step 100 is rewritten in place once its first version is evaluated: a new version.
        try await waitUntil(60, "the first version of step-100 is evaluated") {
            let status = try await store.status()
            return status.jobs.contains { job in
                job.state == .done
                    && status.checkpoints.contains {
                        $0.id == job.checkpointID && $0.path.hasSuffix("alpha/step-100.safetensors")
                    }
            }
        }
        try await Trainer.rewrite("\(alpha)/step-100.safetensors", with: demo("nope", 500))
        try await waitUntil(90, "every version is evaluated") {
            let status = try await store.status()
            return status.jobs.count == 8 && status.jobs.allSatisfy { $0.state == .done || $0.state == .failed }
        }
        try await daemon.stop()

        let status = try await store.status()
        let failed = status.jobs.filter { $0.state == .failed }.map { $0.error ?? "" }
        #expect(failed.isEmpty, "\(failed)")
        // Every evaluated version is a complete file the trainer wrote, each exactly once.
        let evaluated = status.jobs.compactMap { job in status.checkpoints.first { $0.id == job.checkpointID } }
        var complete: [String: String] = [:]  // content hash → path of the complete bytes
        for version in evaluated where version.state == .current {
            let candidate = try #require(Discovery.candidate(at: version.path, runFolder: version.runFolder))
            complete[try #require(try ContentHash.of(candidate))] = version.path
        }
        let first = try #require(Discovery.candidate(at: "\(expected)/step-100.safetensors", runFolder: expected))
        complete[try #require(try ContentHash.of(first))] = "alpha/step-100.safetensors (first version)"
        #expect(Set(evaluated.map(\.contentHash)) == Set(complete.keys), "only complete bytes were evaluated")
        #expect(evaluated.count == 8 && Set(evaluated.map(\.id)).count == 8, "one job per version")
        #expect(Set(evaluated.map(\.run)) == ["alpha", "beta", "final", "gamma"])
        #expect(
            evaluated.filter { $0.state == .replaced }.map { ($0.path as NSString).lastPathComponent }
                == ["step-100.safetensors"])
        let intermediate = status.checkpoints.filter { $0.state == .current && !complete.keys.contains($0.contentHash) }
        #expect(intermediate.isEmpty, "a version that is not a complete file became current: \(intermediate)")
        // Seven distinct contents × two lengths computed; the copy in gamma linked to alpha's step 200.
        #expect(status.results == 14)
        #expect(status.jobs.allSatisfy { $0.done == 2 && $0.planned == 2 })

        // The daemon's numbers are those of a sweep on the same files that runs every window: the daemon takes the
        // shorter length's windows from the longer pass (prefix sharing), exactly.
        let rows = try await store.results(run: nil)
        #expect(rows.contains { ($0.result.point.result?.sharedWindows ?? 0) > 0 })
        for version in evaluated where version.state == .current {
            let job = try #require(status.jobs.first { $0.checkpointID == version.id })
            let runner = SweepRunner(settings: job.settings, sharesPrefixes: false)
            let checkpoint = try SweepCheckpoint.load(version.path)
            let data = try EvaluationData.load(job.settings, longest: runner.longest([checkpoint]))
            let sweep = try runner.run([checkpoint], data: data)
            let stored = rows.filter { $0.checkpoint == version.path && $0.result.contentHash == version.contentHash }
            #expect(stored.count == sweep.points.count)
            for point in sweep.points {
                let row = try #require(stored.first { $0.result.length == point.length })
                #expect(row.result.point.unsupported == point.unsupported)
                if let stored = row.result.point.meanNLL, let computed = point.meanNLL {
                    #expect(abs(stored - computed) <= 1e-9 * abs(computed), "\(version.path) at \(point.length)")
                } else {
                    #expect(row.result.point.meanNLL == nil && point.meanNLL == nil)
                }
                #expect(row.result.point.tokens == point.tokens)
                let windows = zip(row.result.point.result?.windows ?? [], point.result?.windows ?? [])
                #expect(windows.allSatisfy { $0.start == $1.start && abs($0.nll - $1.nll) <= 1e-9 * abs($1.nll) })
            }
        }
    }
}

/// nanoGPT overwrites `ckpt.pt` in place at every evaluation interval: each version is evaluated once, at the step
/// its `iter_num` says.
@Suite(.serialized) struct NanoGPTRun {
    @Test func ckptOverwrittenInPlaceIsEvaluatedOncePerVersion() async throws {
        let scratch = try ScratchFolder("nanogpt-run")
        defer { scratch.remove() }
        let run = scratch.path("runs/shakespeare")
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        let tokens = scratch.path("tokens.u16")
        try randomTokens(tokens)
        var configuration = DaemonConfiguration(
            targets: [
                WatchTarget(
                    folder: scratch.path("runs"),
                    settings: try quickSettings(data: tokens, lengths: "16,32", budget: 64))
            ], store: scratch.path("results.sqlite"))
        configuration.quietSeconds = 0
        configuration.pollOnly = true
        let store = try SQLiteStore(writingTo: configuration.store)
        let checkpoint = run + "/ckpt.pt"
        for (index, fixture) in ["nanogpt", "nanogpt-nobias-compiled", "nanogpt-legacy"].enumerated() {
            // In place, as torch.save(checkpoint, 'ckpt.pt') does: the same path, new bytes.
            let bytes = try Data(contentsOf: URL(fileURLWithPath: Repository.model(fixture) + "/ckpt.pt"))
            if index == 0 { FileManager.default.createFile(atPath: checkpoint, contents: nil) }
            let handle = try #require(FileHandle(forWritingAtPath: checkpoint))
            try handle.truncate(atOffset: 0)
            try handle.write(contentsOf: bytes)
            try handle.close()
            let summary = try await Daemon(configuration: configuration, store: store, logger: .quiet).runOnce()
            #expect(summary.finished == ["done": 1], "\(fixture): \(summary)")
        }
        let versions = try await store.status().checkpoints.filter { $0.path == checkpoint }
        #expect(versions.map(\.step) == [3, 6, 9])
        #expect(versions.map(\.state) == [.replaced, .replaced, .current])
        #expect(Set(versions.map(\.contentHash)).count == 3)
        let results = try await store.results(run: "shakespeare")
        // Two lengths per version, each evaluated once.
        #expect(results.count == 6 && results.allSatisfy { $0.result.outcome == .evaluated })
        #expect(Set(results.map(\.result.key)).count == 6)
        #expect(Dictionary(grouping: results, by: \.step).mapValues(\.count) == [3: 2, 6: 2, 9: 2])
    }
}
