import Evaluation
import Foundation
import ResultStore
import TestSupport
import Testing

@testable import Service

/// What the daemon refuses at start, and what it clears away from an earlier configuration.
@Suite struct DaemonStartup {
    @Test(
        "A missing data file or run folder is refused at start: one line, exit 64, no usage text, nothing queued",
        arguments: ["data", "folder"])
    func refusesWhatCannotWork(missing: String) async throws {
        let scratch = try ScratchFolder("startup")
        defer { scratch.remove() }
        let runs = try scratch.demoRuns()
        let store = scratch.path("results.sqlite")
        let data = missing == "data" ? scratch.path("vaild.tokens.zst") : Repository.kjvValidation
        let folder = missing == "folder" ? scratch.path("runz") : runs
        let (status, _, errors) = try await Executable.run(
            ["watch", folder, "--data", data, "--store", store, "--once"], in: scratch)
        let lines = errors.split(separator: "\n").filter { !$0.hasPrefix("note: ") }  // the OpenBLAS note, on some CPUs
        #expect(status == 64, "\(errors)")
        #expect(lines.count == 1, "\(errors)")
        #expect(lines.first?.hasPrefix("Error: ") == true && !errors.contains("Usage:"))
        #expect(errors.contains(missing == "data" ? "vaild.tokens.zst does not exist" : "runz does not exist"))
        #expect(!FileManager.default.fileExists(atPath: store), "nothing was queued")
    }

    @Test("Jobs of an earlier configuration are cancelled at start and never evaluated; their results stay")
    func earlierConfigurationsJobsAreCancelled() async throws {
        let scratch = try ScratchFolder("startup")
        defer { scratch.remove() }
        let runs = try scratch.demoRuns(methods: ["alibi"], steps: [500])
        let store = MemoryStore()
        var old = try DaemonConfiguration(
            folders: [runs],
            overrides: {
                var o = EvaluationOverrides(); o.data = Repository.kjvValidation; return o
            }())
        old.quietSeconds = 0
        // The old configuration's job is queued but never run (the daemon stopped first).
        _ = try await Scanner(configuration: old, store: store, logger: .quiet).scan()
        let stale = try #require(try await store.status().jobs.first)
        var new = old
        let grid = try LengthGrid(parsing: "1x")
        new.targets = new.targets.map { target in
            var target = target
            target.settings.lengths = grid
            target.settings.budget = 128
            return target
        }
        let summary = try await Daemon(configuration: new, store: store, logger: .quiet, once: true).runOnce()
        let jobs = try await store.status().jobs
        #expect(jobs.first { $0.id == stale.id }?.state == .cancelled)
        #expect(jobs.filter { $0.state == .done }.count == 1 && summary.pending == 0)
        #expect(try await store.results(run: nil).allSatisfy { $0.result.point.length == 64 })
    }
}

/// `status` and `results` on a stopped daemon's store, as a user who cannot write it.
@Suite(.serialized) struct ReadingAStore {
    @Test("status and results read a store whose folder the user cannot write; an unknown run is named with the runs")
    func readOnlyStore() async throws {
        let scratch = try ScratchFolder("readonly")
        defer {
            chmod(scratch.path("store"), 0o755)
            scratch.remove()
        }
        let runs = try scratch.demoRuns(methods: ["alibi"], steps: [500])
        try FileManager.default.createDirectory(atPath: scratch.path("store"), withIntermediateDirectories: true)
        let store = scratch.path("store/results.sqlite")
        let (status, _, errors) = try await Executable.run(
            ["watch", runs, "--data", Repository.kjvValidation, "--store", store, "--once", "--lengths", "1x"],
            in: scratch)
        #expect(status == 0, "\(errors)")
        // The daemon has stopped (its -wal and -shm files are gone); the folder becomes read-only.
        try? FileManager.default.removeItem(atPath: store + ".lock")
        chmod(store, 0o444)
        chmod(scratch.path("store"), 0o555)
        // Root writes anywhere; without the capability that lets it, permissions apply to it too.
        let prefix =
            getuid() == 0 ? ["/usr/bin/setpriv", "--bounding-set=-dac_override", "--inh-caps=-dac_override"] : []
        if !prefix.isEmpty, !FileManager.default.isExecutableFile(atPath: prefix[0]) {
            Issue.record("running as root needs setpriv (util-linux) to drop the permission-override capability")
            return
        }
        let (listed, output, listErrors) = try await Executable.run(
            ["results", "--store", store, "--run", "alibi", "--csv"], prefix: prefix, in: scratch)
        #expect(listed == 0, "\(listErrors)")
        #expect(output.split(separator: "\n").count == 2, "\(output)")
        let (shown, _, statusErrors) = try await Executable.run(
            ["status", "--store", store], prefix: prefix, in: scratch)
        #expect(shown == 0, "\(statusErrors)")
        let (typo, _, typoErrors) = try await Executable.run(
            ["results", "--store", store, "--run", "alibl"], prefix: prefix, in: scratch)
        #expect(typo == 1 && typoErrors.contains("no run named 'alibl'") && typoErrors.contains("runs: alibi"))
        #expect(!typoErrors.contains("Usage:"))
        #expect(!FileManager.default.fileExists(atPath: store + "-shm"), "nothing was written beside the store")
    }
}

/// `extrapolate prune`: a run leaves the store, with a confirmation, and results another run shares stay.
@Suite(.serialized) struct PruningARun {
    @Test("prune asks before removing, removes one run, and keeps a result a copy in another run shares")
    func pruneOneRun() async throws {
        let scratch = try ScratchFolder("prune")
        defer { scratch.remove() }
        let runs = try scratch.demoRuns(methods: ["alibi", "t5"], steps: [500])
        try FileManager.default.createDirectory(atPath: runs + "/copy", withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: runs + "/alibi/step-500.safetensors", toPath: runs + "/copy/step-500.safetensors")
        let store = scratch.path("results.sqlite")
        let (status, _, errors) = try await Executable.run(
            ["watch", runs, "--data", Repository.kjvValidation, "--store", store, "--once", "--lengths", "1x,2x"],
            in: scratch)
        #expect(status == 0, "\(errors)")
        #expect(try await SQLiteStore(readingFrom: store).results(run: nil).count == 6)
        // No terminal and no --yes: nothing is removed.
        let (asked, _, refusal) = try await Executable.run(["prune", "--store", store, "--run", "alibi"], in: scratch)
        #expect(asked == 1 && refusal.contains("would remove 1 checkpoint version(s), 1 job(s) and 0 result(s)"))
        #expect(try await SQLiteStore(readingFrom: store).results(run: "alibi").count == 2)
        let (removed, output, _) = try await Executable.run(
            ["prune", "--store", store, "--run", "alibi", "--yes"], in: scratch)
        #expect(removed == 0 && output.contains("removed 1 checkpoint version(s)"))
        let left = try SQLiteStore(readingFrom: store)
        #expect(try await left.results(run: "alibi").isEmpty)
        #expect(try await left.results(run: "copy").count == 2, "the copy's results, shared with alibi's, stay")
        #expect(try await left.results(run: "t5").count == 2)
        let (typo, _, typoErrors) = try await Executable.run(
            ["prune", "--store", store, "--run", "alibi", "--yes"], in: scratch)
        #expect(typo == 1 && typoErrors.contains("no run named 'alibi'") && typoErrors.contains("runs: copy, t5"))
    }
}
