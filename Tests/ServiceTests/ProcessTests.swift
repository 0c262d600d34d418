import Foundation
import Kernels
import Reports
import ResultStore
import TestSupport
import Testing

/// The daemon as real processes: killed, signalled, doubled, and denied its files.
@Suite(.serialized) struct DaemonProcesses {

    @Test func killNineAtRandomMomentsLosesAndRepeatsNothing() async throws {
        let scratch = try ScratchFolder("kill")
        defer { scratch.remove() }
        let binary = try #require(Executable.path)
        // The short form of Tests/kill-test.sh (run it by hand with 50 trials).
        let (status, output, errors) = try await Executable.run(
            [
                Repository.root.appendingPathComponent("Tests/kill-test.sh").path, "5", binary, "4096",
                "perplexity,passkey",
            ],
            tool: "/bin/bash", in: scratch)
        print(output, terminator: "")
        #expect(status == 0, "\(output)\n\(errors.suffix(2000))")
        #expect(output.contains("identical to the uninterrupted run's"))
    }

    @Test func sigtermLeavesTheJobPendingAndExitsZero() async throws {
        let scratch = try ScratchFolder("sigterm")
        defer { scratch.remove() }
        let runs = try scratch.demoRuns()
        let store = scratch.path("results.sqlite")
        let daemon = try Executable.start(
            [
                "watch", runs, "--data", Repository.kjvValidation, "--budget", "60000", "--quiet-seconds", "0",
                "--store", store, "--shutdown-seconds", "20",
            ], in: scratch)
        try await waitUntil(60, "a job runs") {
            guard FileManager.default.fileExists(atPath: store) else { return false }
            return (try? await SQLiteStore(readingFrom: store).status().jobs.contains { $0.state == .running }) ?? false
        }
        let signalled = Date()
        daemon.terminate()  // SIGTERM
        while daemon.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        #expect(daemon.terminationReason == .exit && daemon.terminationStatus == 0)
        #expect(Date().timeIntervalSince(signalled) < 25, "stopped within --shutdown-seconds")
        let jobs = try await SQLiteStore(readingFrom: store).status().jobs
        #expect(!jobs.contains { $0.state == .running }, "nothing is left running")
        #expect(jobs.contains { $0.state == .pending }, "the interrupted job waits for the next start")
        let log = try String(contentsOfFile: scratch.path("stderr"), encoding: .utf8)
        #expect(log.contains("stopping") && log.contains("stopped"), "\(log.suffix(1000))")
    }

    @Test func aSecondDaemonOnTheSameStoreIsRefused() async throws {
        let scratch = try ScratchFolder("second")
        defer { scratch.remove() }
        let runs = try scratch.demoRuns()
        let store = scratch.path("results.sqlite")
        let first = try Executable.start(
            ["watch", runs, "--data", Repository.kjvValidation, "--store", store, "--quiet-seconds", "0"], in: scratch)
        defer { if first.isRunning { first.terminate() } }
        try await waitUntil(60, "the first daemon holds the store") { FileManager.default.fileExists(atPath: store) }
        let second = try ScratchFolder("second-out")
        defer { second.remove() }
        let (status, _, errors) = try await Executable.run(
            ["watch", runs, "--data", Repository.kjvValidation, "--store", store, "--once"], in: second)
        #expect(status != 0)
        #expect(
            errors.contains("in use by another daemon") && errors.contains("pid \(first.processIdentifier)"),
            "\(errors)")
        first.terminate()
        while first.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        #expect(first.terminationStatus == 0)
    }

    @Test func anUnreadableCheckpointIsRecordedAndReadOnceItIsFixed() async throws {
        let scratch = try ScratchFolder("unreadable")
        defer { scratch.remove() }
        let runs = try scratch.demoRuns()
        let locked = scratch.path("runs/alibi/step-1000.safetensors")
        chmod(locked, 0)
        let store = scratch.path("results.sqlite")
        // Root reads everything; without the two capabilities that let it, permissions apply to it too.
        let prefix =
            getuid() == 0
            ? [
                "/usr/bin/setpriv", "--bounding-set=-dac_override,-dac_read_search",
                "--inh-caps=-dac_override,-dac_read_search",
            ]
            : []
        if !prefix.isEmpty, !FileManager.default.isExecutableFile(atPath: prefix[0]) {
            Issue.record("running as root needs setpriv (util-linux) to drop the permission-override capabilities")
            return
        }
        let arguments = [
            "watch", runs, "--data", Repository.kjvValidation, "--store", store, "--quiet-seconds", "0", "--once",
            "--lengths", "1x",
        ]
        let (status, _, errors) = try await Executable.run(arguments, prefix: prefix, in: scratch)
        #expect(status == 0, "\(errors)")
        var versions = try await SQLiteStore(readingFrom: store).status().checkpoints
        let denied = try #require(versions.first { $0.path == locked })
        #expect(denied.state == .unreadable && denied.reason?.contains("ermission") == true, "\(denied)")
        #expect(versions.contains { $0.path != locked && $0.state == .current })
        chmod(locked, 0o644)
        let (again, _, moreErrors) = try await Executable.run(arguments, prefix: prefix, in: scratch)
        #expect(again == 0, "\(moreErrors)")
        versions = try await SQLiteStore(readingFrom: store).status().checkpoints
        #expect(versions.last { $0.path == locked }?.state == .current)
        #expect(try await SQLiteStore(readingFrom: store).results(run: "alibi").count == 2)
    }

    @Test func statusAndResultsSpeakJSON() async throws {
        let scratch = try ScratchFolder("json")
        defer { scratch.remove() }
        let runs = try scratch.demoRuns(methods: ["alibi", "t5"])
        let store = scratch.path("results.sqlite")
        let (status, once, _) = try await Executable.run(
            [
                "watch", runs, "--data", Repository.kjvValidation, "--store", store, "--once", "--json", "--lengths",
                "1x,4x",
            ],
            in: scratch)
        #expect(status == 0)
        let rows = try ReportJSON.decode([StoredResultsReport.Row].self, from: Data(once.utf8))
        #expect(rows.count == 8 && Set(rows.map(\.run)) == ["alibi", "t5"])
        #expect(rows.allSatisfy { $0.outcome == .evaluated && $0.interval != nil && $0.tokens == 20 * 16 * 64 })
        let (_, results, _) = try await Executable.run(
            ["results", "--store", store, "--run", "t5", "--json"], in: scratch)
        let t5 = try ReportJSON.decode([StoredResultsReport.Row].self, from: Data(results.utf8))
        #expect(t5.map(\.length) == [64, 256, 64, 256] && t5.map(\.step) == [500, 500, 1000, 1000])
        let (_, statusJSON, _) = try await Executable.run(["status", "--store", store, "--json"], in: scratch)
        let report = try ReportJSON.decode(StatusReport.Result.self, from: Data(statusJSON.utf8))
        #expect(report.queue == ["done": 4] && report.results == 8)
        #expect(report.runs.map(\.name) == ["alibi", "t5"])
        let (_, csv, _) = try await Executable.run(["results", "--store", store, "--csv"], in: scratch)
        #expect(csv.split(separator: "\n").count == 9 && csv.hasPrefix(ResultCSV.header + "\n"))
    }
}

/// Every kernel set gives the numbers the reference-checked one gives: `score` in a process per set, forced with
/// EXTRAPOLATE_KERNELS, on fixtures that exercise each attention path (distance bias, FIRE, rotary, a sliding window,
/// a head width that is not a multiple of 16).
@Suite(.serialized) struct KernelSets {
    struct Score: Decodable {
        var kernels: String
        var logprobs: [Double?]
    }

    @Test(arguments: ["mpt", "spec-fire", "spec-rotary-window", "llama-mqa-headdim", "bloom-12h", "opt", "gemma2"])
    func everySetGivesTheSameLogProbabilities(model: String) async throws {
        let scratch = try ScratchFolder("kernels")
        defer { scratch.remove() }
        let tokens = scratch.path("tokens.u16")
        try randomTokens(tokens, count: 400, vocabulary: 64)
        var results: [String: [Double]] = [:]
        for set in ["avx512", "avx2", "generic"] {
            // Given to the child alone: setenv here would reach every process other tests start meanwhile.
            let (status, output, errors) = try await Executable.run(
                ["score", "--checkpoint", Repository.model(model), "--tokens", tokens, "--length", "250", "--json"],
                environment: ["EXTRAPOLATE_KERNELS": set], in: scratch)
            #expect(status == 0, "\(errors)")
            let score = try JSONDecoder().decode(Score.self, from: Data(output.utf8))
            let supported =
                (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.contains(
                    set == "avx512" ? "avx512f" : (set == "avx2" ? "avx2" : "")) ?? false
            if supported || set == "generic" { #expect(score.kernels == set, "forced \(set), ran \(score.kernels)") }
            results[score.kernels] = score.logprobs.compactMap { $0 }
        }
        let reference = try #require(results["avx512"] ?? results["avx2"])
        for (set, values) in results {
            expectClose(values, reference, tolerance: 1e-4, "\(model): \(set) against the widest set")
        }
    }

    /// f16 matrices kept as stored widen through F16C or, with the portable set forced, through the portable
    /// conversion: both exact, so on either set the numbers are those of widening at load, bit for bit.
    @Test func halfWeightsWidenExactlyOnEverySet() async throws {
        let scratch = try ScratchFolder("half-kernels")
        defer { scratch.remove() }
        let tokens = scratch.path("tokens.u16")
        try randomTokens(tokens, count: 300, vocabulary: 96)
        var results: [[Double]] = []
        for (set, weights) in [("generic", "stored"), ("generic", "float32"), ("", "stored"), ("", "float32")] {
            let (status, output, errors) = try await Executable.run(
                [
                    "score", "--checkpoint", Repository.model("llama-f16"), "--tokens", tokens, "--length", "256",
                    "--json", "--weights", weights,
                ],
                environment: ["EXTRAPOLATE_KERNELS": set], in: scratch)
            #expect(status == 0, "\(errors)")
            results.append(try JSONDecoder().decode(Score.self, from: Data(output.utf8)).logprobs.compactMap { $0 })
        }
        #expect(results[0].count == 255 && results[0] == results[1] && results[2] == results[3])
    }

    @Test func cpuSaysWhatRunsAndRefusesWhatCannot() async throws {
        let scratch = try ScratchFolder("cpu")
        defer { scratch.remove() }
        struct Report: Decodable {
            var cpuLevel: Int
            var kernels: String
            var refusedKernels: String?
        }
        for (forced, expectedRefusal) in [("generic", nil), ("sse9000", "sse9000")] as [(String, String?)] {
            let (status, output, _) = try await Executable.run(
                ["cpu", "--json"], environment: ["EXTRAPOLATE_KERNELS": forced], in: scratch)
            #expect(status == 0)
            let report = try JSONDecoder().decode(Report.self, from: Data(output.utf8))
            #expect(report.refusedKernels == expectedRefusal)
            if expectedRefusal == nil { #expect(report.kernels == "generic") }
            if expectedRefusal != nil { #expect(report.kernels == ["", "generic", "avx2", "avx512"][report.cpuLevel]) }
        }
    }
    @Test func weakOpenBLASKernelsAreRaisedOnceButNotForHelp() async throws {
        // Pin OpenBLAS to its SSE3 kernels, as 0.3.21 picks on CPUs it does not know; Executable.start keeps
        // OpenBLAS's choice by default, so `env -u` lifts that.
        guard Kernels.cpuLevel >= 2 else {
            print("skipped: this CPU has neither AVX2 nor AVX-512, so Prescott is not below what it supports")
            return
        }
        let scratch = try ScratchFolder("blas-core")
        defer { scratch.remove() }
        let binary = try #require(Executable.path)
        let pinned = ["-u", "EXTRAPOLATE_KEEP_BLAS_CORETYPE", "OPENBLAS_CORETYPE=Prescott", binary]
        let (_, _, scoreErrors) = try await Executable.run(
            pinned + ["score", "--checkpoint", scratch.path("missing"), "--tokens", scratch.path("missing.u16")],
            tool: "/usr/bin/env", in: scratch)
        let notes = scoreErrors.components(separatedBy: "\n").filter { $0.hasPrefix("note:") }
        #expect(notes.count == 1, "\(scoreErrors)")
        #expect(notes.first?.contains("OPENBLAS_CORETYPE=Prescott pins") == true, "\(notes)")
        #expect(notes.first?.hasSuffix("so extrapolate uses those") == true, "\(notes)")
        let (status, help, helpErrors) = try await Executable.run(
            pinned + ["score", "--help"], tool: "/usr/bin/env", in: scratch)
        #expect(status == 0)
        #expect(help.contains("USAGE: extrapolate score"))
        #expect(!helpErrors.contains("note:"), "\(helpErrors)")
    }
}
