import Foundation
import ResultStore
import TestSupport
import Testing

/// A fleet of real processes on one PostgreSQL database: discoverers and workers started as `extrapolate`
/// processes, killed, frozen and cut off from the database on purpose.
@Suite(.serialized, .enabled(if: TestPostgres.url != nil, Comment(rawValue: TestPostgres.absence)))
struct FleetOfProcesses {
    /// The demo checkpoints, each with a distinct byte in its metadata: distinct content (so each is evaluated, not
    /// shared) with the numbers of the checkpoint it copies.
    static func makeRuns(in scratch: ScratchFolder, runs: Int, perRun: Int) throws -> String {
        let demos = ["alibi", "rotary", "t5", "sinusoidal", "nope"].flatMap { method in
            [500, 1000, 2000].map { Repository.demo(method, step: $0) }
        }
        let root = scratch.path("runs")
        for run in 0..<runs {
            let folder = "\(root)/r\(run)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            for index in 0..<perRun {
                let bytes = try Data(contentsOf: URL(fileURLWithPath: demos[(run * perRun + index) % demos.count]))
                var (json, data) = try SafetensorsBytes.header(of: bytes)
                var metadata = json["__metadata__"] as? [String: Any] ?? [:]
                metadata["fleet-copy"] = "\(run)-\(index)"
                json["__metadata__"] = metadata
                try SafetensorsBytes.assemble(json, data: data).write(
                    to: URL(fileURLWithPath: "\(folder)/step-\((index + 1) * 100).safetensors"))
            }
        }
        return root
    }

    /// A process in its own scratch folder (its log in `stderr` there).
    final class Member {
        let name: String
        let folder: ScratchFolder
        let process: Process

        init(_ name: String, _ arguments: [String]) throws {
            self.name = name
            folder = try ScratchFolder("fleet-\(name)")
            process = try Executable.start(arguments, in: folder)
        }

        var log: String { (try? String(contentsOfFile: folder.path("stderr"), encoding: .utf8)) ?? "" }

        func stop() async {
            if process.isRunning { process.terminate() }
            while process.isRunning { try? await Task.sleep(for: .milliseconds(50)) }
        }
    }

    static let settings = ["--data", Repository.kjvValidation, "--lengths", "1x,4x,16x", "--budget", "16384"]

    /// 3 workers and 2 discoverers, one worker killed with -9 and the server restarted: every (checkpoint, length)
    /// has exactly one result, equal to a single process's on SQLite.
    @Test("The fleet trial: kill -9 and a server restart lose and duplicate nothing")
    func fleetTrial() async throws {
        let scratch = try ScratchFolder("fleet")
        defer { scratch.remove() }
        let runs = try Self.makeRuns(in: scratch, runs: 4, perRun: 10)
        // A cluster of its own: restarting the shared one would cut off every other test's database too.
        let cluster = scratch.path("cluster")
        let script = Repository.root.appendingPathComponent("Scripts/postgres-cluster").path
        let started = await Task.detached {
            system("'\(script)' start '\(cluster)' > '\(cluster).url' 2> '\(cluster).log'")
        }.value
        defer { _ = system("'\(script)' stop '\(cluster)' >/dev/null 2>&1") }
        try #require(
            started == 0,
            "Scripts/postgres-cluster start: \((try? String(contentsOfFile: cluster + ".log", encoding: .utf8)) ?? "")")
        let url = try String(contentsOfFile: cluster + ".url", encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines)
        let store = try await PostgresStore(address: try PostgresAddress(url: url), writing: true)
        var members: [Member] = []
        for index in 0..<2 {
            members.append(
                try Member(
                    "discoverer\(index)",
                    ["watch", runs, "--no-evaluate", "--store", url, "--quiet-seconds", "0", "--rescan-seconds", "2"]
                        + Self.settings))
        }
        for index in 0..<3 {
            members.append(
                try Member(
                    "worker\(index)", ["worker", "--store", url, "--threads", "1", "--lease-seconds", "4"]))
        }
        defer { for member in members { member.process.terminate() } }
        let expected = 40 * 3
        try await waitUntil(240, "a worker is evaluating with results stored") {
            let stored = try await store.counts().results
            let busy = try await store.workers(withinSeconds: 10).contains { $0.info.job != nil }
            return stored >= 6 && busy
        }
        // kill -9 a worker in the middle of a job.
        let busy = try await store.workers(withinSeconds: 10).first {
            $0.info.job != nil && $0.info.roles == ["evaluate"]
        }
        let victim = try #require(members.first { $0.process.processIdentifier == busy?.info.pid })
        kill(victim.process.processIdentifier, SIGKILL)
        print("fleet: killed \(victim.name) (pid \(victim.process.processIdentifier)) with -9")
        try await waitUntil(240, "a third of the results are stored") {
            try await store.counts().results >= expected / 3
        }
        // The server restarts under everyone. system(3), not Process: the restarted server outlives the script, and
        // Foundation's Process can then report the script as running for ever.
        let restart = await Task.detached { system("'\(script)' restart '\(cluster)' >/dev/null 2>&1") }.value
        #expect(restart == 0, "Scripts/postgres-cluster restart failed")
        let restarted = restart == 0
        // The test's own connections may need the pool replaced after the restart: ask until it answers.
        var resultsAtRestart = 0
        for _ in 0..<20 {
            if let counts = try? await store.counts() {
                resultsAtRestart = counts.results
                break
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        print("fleet: the PostgreSQL server restarted (\(restart))")
        try await waitUntil(400, "every result is stored and every job done") {
            guard let counts = try? await store.counts() else { return false }
            return counts.results == expected && counts.jobs(.done) == 40
        }
        let survivors = members.filter { $0 !== victim }
        #expect(survivors.allSatisfy { $0.process.isRunning }, "no process crashed")
        for member in survivors { await member.stop() }
        for member in survivors {
            #expect(member.process.terminationStatus == 0, "\(member.name): \(member.log.suffix(800))")
        }
        if restarted {
            #expect(resultsAtRestart < expected, "the restart came before the end, so work went on after it")
        }
        // Exactly one result per (checkpoint, length), and the numbers of a single process on SQLite.
        let rows = try await store.results(run: nil)
        #expect(rows.count == expected)
        #expect(Set(rows.map { "\($0.checkpoint)|\($0.result.length)" }).count == expected)
        let alone = try ScratchFolder("fleet-alone")
        defer { alone.remove() }
        let (status, _, errors) = try await Executable.run(
            [
                "watch", runs, "--store", alone.path("results.sqlite"), "--once", "--quiet-seconds", "0", "--threads",
                "1",
            ]
                + Self.settings, in: alone)
        #expect(status == 0, "\(errors.suffix(800))")
        let single = try await SQLiteStore(readingFrom: alone.path("results.sqlite")).results(run: nil)
        let reference = Dictionary(
            uniqueKeysWithValues: single.map { ("\($0.checkpoint)|\($0.result.length)", $0.result.point.meanNLL) })
        #expect(reference.count == expected)
        // A job taken over (its worker killed, its lease run out under load) evaluates its remaining lengths without
        // the longer pass whose windows it would have shared (PrefixSharing), which moves float32 rounding by ~1e-8.
        var identical = 0
        var worst = 0.0
        for row in rows {
            let key = "\(row.checkpoint)|\(row.result.length)"
            let fleet = try #require(row.result.point.meanNLL, "\(key)")
            let alone = try #require(reference[key] ?? nil, "\(key)")
            if fleet == alone { identical += 1 }
            worst = max(worst, abs(fleet - alone) / abs(alone))
            #expect(abs(fleet - alone) <= 1e-6 * abs(alone), "\(key): \(fleet) in the fleet, \(alone) alone")
        }
        print(
            "fleet: \(identical) of \(rows.count) results bit-identical to one process alone; worst relative \(worst)")
        for member in members { member.folder.remove() }
    }

    /// A worker frozen past its lease loses its job to another; thawed, its late write is refused and logged, and
    /// nothing is stored twice.
    @Test("A worker frozen past its lease loses its job, and its late write is refused")
    func frozenWorkerLosesItsLease() async throws {
        let scratch = try ScratchFolder("lease")
        defer { scratch.remove() }
        let runs = try Self.makeRuns(in: scratch, runs: 1, perRun: 3)
        let url = try await TestPostgres.database()
        defer { Task { await TestPostgres.drop(url) } }
        let store = try await PostgresStore(address: try PostgresAddress(url: url), writing: true)
        let heavy = ["--data", Repository.kjvValidation, "--lengths", "1x,2x,4x,8x,16x", "--budget", "16384"]
        let discoverer = try Member(
            "lease-discoverer", ["watch", runs, "--no-evaluate", "--store", url, "--quiet-seconds", "0"] + heavy)
        let frozen = try Member("lease-frozen", ["worker", "--store", url, "--threads", "1", "--lease-seconds", "2"])
        defer {
            kill(frozen.process.processIdentifier, SIGCONT)
            for member in [discoverer, frozen] { member.process.terminate() }
        }
        try await waitUntil(120, "the first worker has stored a length of its job") {
            try await store.counts().results >= 1
        }
        kill(frozen.process.processIdentifier, SIGSTOP)
        let frozenAt = Date()
        let claimed = try #require(try await store.status().jobs.first { $0.state == .running })
        let other = try Member("lease-other", ["worker", "--store", url, "--threads", "1", "--lease-seconds", "2"])
        defer { other.process.terminate() }
        try await waitUntil(60, "the frozen worker's job is taken again") {
            try await store.status().jobs.first { $0.id == claimed.id }.map { $0.attempt >= 2 } ?? false
        }
        let retaken = Date().timeIntervalSince(frozenAt)
        try await waitUntil(300, "every job is done") { try await store.counts().jobs(.done) == 3 }
        let before = try await store.counts().results
        kill(frozen.process.processIdentifier, SIGCONT)
        try await waitUntil(120, "the thawed worker finds out") { frozen.log.contains("lease lost") }
        #expect(try await store.counts().results == before, "the late write was refused")
        #expect(before == 3 * 5)
        let job = try #require(try await store.status().jobs.first { $0.id == claimed.id })
        #expect(job.state == .done && job.worker != claimed.worker)
        print(
            "fleet: a frozen worker's job was taken again \(String(format: "%.1f", retaken)) s after it froze (lease 2 s)"
        )
        for member in [discoverer, frozen, other] { await member.stop() }
        for member in [discoverer, frozen, other] { member.folder.remove() }
    }
}
