import ArgumentParser
import Evaluation
import Foundation
import Reports
import Testing
import TestSupport
#if canImport(FoundationXML)
    import FoundationXML
#endif

@testable import ExtrapolateCLI

typealias Sweep = Extrapolate.Sweep
typealias Compare = Extrapolate.Compare

@Suite("extrapolate sweep and compare")
struct SweepCommandTests {
    let kjv = Repository.kjvValidation
    let bytes = Repository.model("llama-bytes")

    @Test("A sweep on the bundled dataset writes JSON, CSV and two well-formed SVG plots")
    func sweep() throws {
        let folder = try ScratchFolder("sweep")
        defer { folder.remove() }
        let (json, csv, svg) = (folder.path("s.json"), folder.path("s.csv"), folder.path("s.svg"))
        try Sweep.parse([
            "--checkpoint", bytes, "--data", kjv, "--lengths", "1x,2x,4x", "--budget", "600",
            "--protocol", "sliding:32", "--bootstrap", "100", "--json-output", json, "--csv", csv, "--svg", svg,
        ]).run()
        let report = try ReportJSON.decode(SweepResult.self, from: Data(contentsOf: URL(fileURLWithPath: json)))
        #expect(report.points.map(\.length) == [64, 128, 256])
        #expect(
            report.points.allSatisfy {
                $0.result?.tokens == 600 && $0.result?.evaluationProtocol == .sliding(stride: 32)
            })
        #expect(
            report.points.allSatisfy { $0.result?.bitsPerByte != nil && $0.interval != nil && $0.perplexity != nil })
        let rows = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n")
        #expect(rows.count == 4 && rows[0] == ResultCSV.header)
        for plot in [svg, folder.path("s-positions.svg")] {
            let text = try String(contentsOfFile: plot, encoding: .utf8)
            #expect(text.hasPrefix("<svg") && text.contains("polyline") && text.contains("trained length"))
            #expect(XMLParser(data: Data(text.utf8)).parse(), "\(plot) is not well-formed XML")
        }
        #expect(SweepReport(report).table().contains("perplexity = exp(token-weighted mean NLL)"))
    }

    @Test("Each checkpoint's 1x is its own trained length")
    func ownTrainedLength() throws {
        // llama-bytes is trained at 64, gpt2-bf16 at 128 (its learned table).
        let gpt2 = Repository.model("gpt2-bf16")
        let raw = try tokenFile((0..<700).map { $0 % 96 }, dtype: .uint16)
        defer { try? FileManager.default.removeItem(atPath: raw) }
        let settings = EvaluationSettings(
            data: DataReference(path: raw), lengths: try LengthGrid(parsing: "1x,2x"), resamples: 0)
        let runner = SweepRunner(settings: settings)
        let checkpoints = try [bytes, gpt2].map { path throws(EvaluationError) in try SweepCheckpoint.load(path) }
        let result = try runner.run(
            checkpoints, data: try EvaluationData.load(settings, longest: runner.longest(checkpoints)))
        let lengths = Dictionary(grouping: result.points, by: \.checkpoint).mapValues { $0.map(\.length) }
        #expect(lengths[bytes] == [64, 128] && lengths[gpt2] == [128, 256])
        #expect(result.points.allSatisfy { $0.multiple == 1 || $0.multiple == 2 })
    }

    @Test("Options that cannot apply are refused, not ignored; bad options exit 64")
    func refusals() throws {
        let gpt2 = Repository.model("gpt2-bf16")
        let raw = try tokenFile((0..<1000).map { $0 % 96 }, dtype: .uint16)
        defer { try? FileManager.default.removeItem(atPath: raw) }
        try Sweep.parse(["--checkpoint", gpt2, "--data", raw, "--lengths", "64,256", "--budget", "300"]).run()
        for arguments in [
            ["--protocol", "sliding:0"], ["--bos", "every"], ["--lengths", "3q"], ["--lengths", "1"],
            ["--budget", "-4"], ["--extensions", "warp"],
        ] {
            do {
                _ = try Sweep.parse(["--checkpoint", gpt2, "--data", raw] + arguments)
                Issue.record("\(arguments) was accepted")
            } catch {
                #expect(Sweep.exitCode(for: error) == .validationFailure, "\(arguments): \(Sweep.message(for: error))")
            }
        }
        #expect { try Sweep.parse(["--checkpoint", gpt2, "--data", raw, "--budget", "5000"]).run() } throws: {
            "\($0)".contains("1000 tokens")
        }
        #expect { try Sweep.parse(["--checkpoint", gpt2, "--data", raw, "--all-extensions"]).run() } throws: {
            "\($0)".contains("no rotary layer")
        }
        #expect { try Sweep.parse(["--checkpoint", gpt2, "--data", raw, "--per-document"]).run() } throws: {
            "\($0)".contains("raw token file")
        }
    }

    @Test("compare: a model against itself is zero; few windows are flagged; unsupported lengths are refused")
    func compare() throws {
        let folder = try ScratchFolder("compare")
        defer { folder.remove() }
        try Compare.parse([
            bytes, bytes, "--data", kjv, "--budget", "300", "--bootstrap", "50", "--json-output", folder.path("c.json"),
        ]).run()
        let result = try ReportJSON.decode(
            CheckpointComparison.self, from: Data(contentsOf: URL(fileURLWithPath: folder.path("c.json"))))
        #expect(
            result.meanNLLDifference == 0 && result.interval.quantity == "meanNLLDifference" && result.data.path == kjv)
        #expect(
            result.warnings.first?.contains("too few to trust") == true && result.a.perplexity == result.b.perplexity)
        let gpt2 = Repository.model("gpt2-bf16")
        let raw = try tokenFile((0..<1000).map { $0 % 96 }, dtype: .uint16)
        defer { try? FileManager.default.removeItem(atPath: raw) }
        #expect { try Compare.parse([gpt2, gpt2, "--data", raw, "--length", "256"]).run() } throws: {
            "\($0)".contains("128 rows")
        }
    }
}
