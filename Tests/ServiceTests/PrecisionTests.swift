import Foundation
import Kernels
import Reports
import ResultStore
import TestSupport
import Testing

/// `--precision bf16` through the real binary: its results are labelled and keyed apart from float32 ones (a bf16
/// result never answers a float32 query, nor the reverse), and a CPU or kernel set without bf16 products refuses the
/// mode in one line before anything runs.
@Suite(.serialized) struct PrecisionProcesses {
    @Test("bf16 results carry their precision in JSON, CSV and labels, and are stored apart from float32 ones")
    func bf16ResultsAreKeyedAndLabelledApart() async throws {
        guard Kernels.hasBF16Products else {
            print("skipped: this CPU has no AVX512-BF16, so bf16 results cannot be made here (the refusal is tested)")
            return
        }
        let scratch = try ScratchFolder("precision")
        defer { scratch.remove() }
        let runs = try scratch.demoRuns(methods: ["alibi"], steps: [500])
        let store = scratch.path("results.sqlite")
        func watch(_ extra: [String]) async throws -> [StoredResultsReport.Row] {
            let (status, output, errors) = try await Executable.run(
                [
                    "watch", runs, "--data", Repository.kjvValidation, "--store", store, "--once", "--json",
                    "--lengths",
                    "1x,4x", "--bootstrap", "0",
                ] + extra,
                in: scratch)
            #expect(status == 0, "\(errors)")
            return try ReportJSON.decode([StoredResultsReport.Row].self, from: Data(output.utf8))
        }
        let half = try await watch(["--precision", "bf16"])
        #expect(half.count == 2 && half.allSatisfy { $0.precision == .bf16 && $0.outcome == .evaluated })
        let all = try await watch([])
        let exact = all.filter { $0.precision == .float32 }
        #expect(all.count == 4 && exact.count == 2, "float32 was evaluated, not answered by the bf16 results")
        for row in exact {
            let twin = try #require(half.first { $0.length == row.length })
            #expect(twin.scoringHash != row.scoringHash)
            #expect(twin.perplexity != row.perplexity)
            #expect(abs(twin.perplexity! / row.perplexity! - 1) < 1e-3, "bf16 within 0.1% of exact")
        }
        let again = try await watch(["--precision", "bf16"])
        #expect(again.count == 4, "a second bf16 pass found its results stored: nothing evaluated twice")
        let (_, csv, _) = try await Executable.run(["results", "--store", store, "--csv"], in: scratch)
        let lines = csv.split(separator: "\n").map(String.init)
        #expect(lines[0].hasSuffix(",precision"))
        #expect(lines.dropFirst().filter { $0.hasSuffix(",bf16") }.count == 2)
        #expect(lines.dropFirst().filter { $0.hasSuffix(",float32") }.count == 2)
        let curves = Extrapolation.curves(all)
        #expect(Set(curves.map(\.label)) == ["alibi", "alibi · bf16"])
    }

    @Test("Without bf16 products, --precision bf16 is refused in one line by score, sweep and watch")
    func refusedWithoutBF16Products() async throws {
        let scratch = try ScratchFolder("precision-refused")
        defer { scratch.remove() }
        let runs = try scratch.demoRuns(methods: ["alibi"], steps: [500])
        let commands: [[String]] = [
            [
                "score", "--checkpoint", Repository.demo("alibi"), "--tokens", Repository.kjvValidation, "--precision",
                "bf16",
            ],
            [
                "sweep", "--checkpoint", Repository.demo("alibi"), "--data", Repository.kjvValidation, "--precision",
                "bf16",
            ],
            [
                "watch", runs, "--data", Repository.kjvValidation, "--store", scratch.path("r.sqlite"), "--once",
                "--precision", "bf16",
            ],
        ]
        for command in commands {
            // The AVX2 kernel set has no bf16 products, whatever the CPU.
            let (status, output, errors) = try await Executable.run(
                command, environment: ["EXTRAPOLATE_KERNELS": "avx2"], in: scratch)
            #expect(status != 0 && output.isEmpty, "\(command[0]): \(status)")
            let lines = errors.split(separator: "\n").filter { !$0.hasPrefix("note:") }
            #expect(lines.count == 1 && lines[0].contains("--precision bf16 needs"), "\(command[0]): \(errors)")
        }
        #expect(
            !FileManager.default.fileExists(atPath: scratch.path("r.sqlite")), "watch refused before creating a store")
    }
}
