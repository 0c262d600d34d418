import Checkpoints
import Foundation
import ResultStore
import TestSupport
import Testing

@testable import Service

/// A trainer that saves under one name again and again (nanoGPT's ckpt.pt): every save is evaluated, from a copy
/// taken the moment it was complete.
@Suite(.serialized) struct RewrittenInPlace {
    /// Jobs done in the store at `path`; 0 while the daemon is still creating it.
    static func done(_ path: String) async -> Int {
        // A store not created or not migrated yet holds no finished job.
        (try? await SQLiteStore(readingFrom: path).status().jobs.filter { $0.state == .done }.count) ?? 0
    }

    /// A real daemon process watching `runs/` of `scratch` (in this process, other tests' blocking work could starve
    /// it), one length on a small span, its store in `state/`; and that store's path.
    static func daemon(_ scratch: ScratchFolder, _ extra: [String] = []) throws -> (Process, store: String) {
        try FileManager.default.createDirectory(atPath: scratch.path("runs/nano"), withIntermediateDirectories: true)
        let store = scratch.path("state/results.sqlite")
        let process = try Executable.start(
            [
                "watch", scratch.path("runs"), "--data", Repository.kjvValidation, "--lengths", "1x", "--budget", "256",
                "--bootstrap", "0", "--store", store,
            ] + extra, in: scratch)
        return (process, store)
    }

    /// The demo's ALiBi probe at three steps: three different checkpoints saved in turn under one name.
    let saves = [500, 1000, 2000].map { Repository.demo("alibi", step: $0) }

    @Test("Saves 1 s apart under one name, with --quiet-seconds 10: each is evaluated once, and no copy is left")
    func everySaveIsEvaluated() async throws {
        let scratch = try ScratchFolder("inplace")
        defer { scratch.remove() }
        let run = scratch.path("runs/nano")
        let (daemon, store) = try Self.daemon(scratch)
        defer { if daemon.isRunning { daemon.terminate() } }
        let file = run + "/model.safetensors"
        let contents = try saves.map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        // The first save is waited for: then the daemon has scanned the run and watches it (on a loaded machine its
        // start can take seconds). The next two follow 1 s apart, each written in two pieces like torch.save.
        for (index, bytes) in contents.enumerated() {
            let started = Date()
            try await Trainer.write(bytes, to: file, pieces: 2, pause: 0.05)
            if index == 0 {
                try await waitUntil(120, "the first save is evaluated") {
                    await Self.done(store) >= 1
                }
            } else {
                try await Task.sleep(for: .seconds(max(0, 1 - Date().timeIntervalSince(started))))
            }
        }
        do {
            try await waitUntil(120, "three versions are evaluated") {
                try await SQLiteStore(readingFrom: store).status().jobs.filter { $0.state == .done }.count == 3
            }
        } catch {
            let log = try String(contentsOfFile: scratch.path("stderr"), encoding: .utf8)
            print(log.suffix(4000))
            throw error
        }
        daemon.terminate()
        while daemon.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        let status = try await SQLiteStore(readingFrom: store).status()
        let hashes = try contents.map { bytes in
            let copy = scratch.path("hash-\(UUID().uuidString)/model.safetensors")
            try FileManager.default.createDirectory(
                atPath: (copy as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try bytes.write(to: URL(fileURLWithPath: copy))
            let candidate = try #require(
                Discovery.candidate(at: (copy as NSString).deletingLastPathComponent, runFolder: run))
            return try #require(try ContentHash.of(candidate))
        }
        #expect(Set(status.checkpoints.filter { $0.state != .overwritten }.map(\.contentHash)) == Set(hashes))
        #expect(status.jobs.count == 3 && status.jobs.allSatisfy { $0.state == .done })
        let results = try await SQLiteStore(readingFrom: store).results(run: "nano")
        #expect(results.count == 3 && Set(results.map(\.result.point.perplexity)).count == 3)
        #expect(status.checkpoints.allSatisfy { $0.snapshot == nil }, "every copy was released")
        #expect(SnapshotArea(folder: scratch.path("state/snapshots"), limit: 1).copies().isEmpty)
    }

    @Test("A save cut off by the next one is recorded as overwritten; a full snapshot area falls back to the file")
    func cutOffSaveAndFullArea() async throws {
        let scratch = try ScratchFolder("inplace")
        defer { scratch.remove() }
        let run = scratch.path("runs/nano")
        let (daemon, store) = try Self.daemon(scratch, ["--snapshot-limit", "1"])  // no room: read from the file itself
        defer { if daemon.isRunning { daemon.terminate() } }
        let file = run + "/model.safetensors"
        // A complete save first, waited for: then the daemon watches the run.
        try Data(contentsOf: URL(fileURLWithPath: saves[2])).write(to: URL(fileURLWithPath: file))
        try await waitUntil(120, "the first save is evaluated") {
            await Self.done(store) >= 1
        }
        let first = try Data(contentsOf: URL(fileURLWithPath: saves[0]))
        try first.prefix(first.count / 2).write(to: URL(fileURLWithPath: file))
        // Each state held for seconds, so a loaded machine's scans still see the half save and the next one's start.
        try await Task.sleep(for: .seconds(2))
        try await Trainer.write(
            try Data(contentsOf: URL(fileURLWithPath: saves[1])), to: file, pieces: 4, pause: 0.5)
        try await waitUntil(120, "the complete save is evaluated") {
            try await SQLiteStore(readingFrom: store).status().jobs.filter { $0.state == .done }.count == 2
        }
        daemon.terminate()
        while daemon.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        let versions = try await SQLiteStore(readingFrom: store).status().checkpoints
        let cut = versions.filter { $0.state == .overwritten }
        #expect(cut.count == 1 && cut.first?.reason?.contains("before it was seen complete") == true, "\(versions)")
        #expect(versions.contains { $0.state == .current && $0.snapshot == nil })
        let log = try String(contentsOfFile: scratch.path("stderr"), encoding: .utf8)
        #expect(log.contains("the snapshot area is full"))
    }
}

/// A copy a pending job still needs survives a restart's clean-up, for a lone file (nanoGPT's ckpt.pt) as for a
/// folder's file.
@Suite struct SnapshotsAcrossARestart {
    @Test("A restart keeps the copy a pending job needs, evaluates from it, then deletes it")
    func restartKeepsNeededCopies() async throws {
        let scratch = try ScratchFolder("restart")
        defer { scratch.remove() }
        try FileManager.default.createDirectory(atPath: scratch.path("runs/nano"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: Repository.model("nanogpt") + "/ckpt.pt", toPath: scratch.path("runs/nano/ckpt.pt"))
        let tokens = scratch.path("tokens.u16")
        try Data((0..<4000).flatMap { [UInt8($0 % 96), 0] }).write(to: URL(fileURLWithPath: tokens))
        var configuration = DaemonConfiguration(
            targets: [
                WatchTarget(folder: scratch.path("runs"), settings: try quickSettings(data: tokens, lengths: "1x"))
            ], store: scratch.path("state/results.sqlite"))
        configuration.quietSeconds = 0
        let store = try SQLiteStore(writingTo: configuration.store)
        // The first process registers the version with its copy and queues its job, then stops.
        _ = try await Scanner(configuration: configuration, store: store, logger: .quiet).scan()
        let version = try #require(try await store.status().checkpoints.first)
        let copy = try #require(version.snapshot)
        #expect(copy.hasSuffix("/ckpt.pt") && FileManager.default.fileExists(atPath: copy))
        // A stray copy no version names, as a crash between copying and registering leaves.
        let stray = configuration.snapshotFolder + "/stray"
        try FileManager.default.createDirectory(atPath: stray, withIntermediateDirectories: true)
        // The restart: the needed copy stays and is evaluated from; the stray one goes; then the copy is released.
        let summary = try await Daemon(configuration: configuration, store: store, logger: .quiet, once: true)
            .runOnce()
        #expect(summary.finished["done"] == 1, "\(summary)")
        #expect(!FileManager.default.fileExists(atPath: stray))
        let after = try await store.status().checkpoints.first
        #expect(!FileManager.default.fileExists(atPath: copy) && after?.snapshot == nil)
        let area = SnapshotArea(folder: configuration.snapshotFolder, limit: 1)
        #expect(area.copies().isEmpty, "the copy's folder is deleted with it: \(area.copies())")
    }
}
