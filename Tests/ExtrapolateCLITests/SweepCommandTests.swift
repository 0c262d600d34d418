import Foundation
import Testing
#if canImport(FoundationXML)
import FoundationXML
#endif

@testable import ExtrapolateCLI

@Suite("extrapolate sweep and compare")
struct SweepCommandTests {
    let kjv = modelFolder.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Datasets/kjv/valid.tokens.zst").path
    let bytes = modelFolder.appendingPathComponent("llama-bytes").path

    @Test("A sweep on the bundled dataset writes JSON, CSV and two well-formed SVG plots")
    func sweep() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sweep-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let (json, csv, svg) = (folder.appendingPathComponent("s.json").path, folder.appendingPathComponent("s.csv").path,
                                folder.appendingPathComponent("s.svg").path)
        try SweepCommand.parse(["--checkpoint", bytes, "--data", kjv, "--lengths", "1x,2x,4x", "--budget", "600",
                                "--protocol", "sliding:32", "--bootstrap", "100", "--json-output", json, "--csv", csv, "--svg", svg]).run()
        let report = try JSONDecoder().decode(SweepReport.self, from: Data(contentsOf: URL(fileURLWithPath: json)))
        #expect(report.points.map(\.length) == [64, 128, 256])
        #expect(report.points.allSatisfy { $0.result?.tokens == 600 && $0.result?.protocolName == "sliding:32" })
        #expect(report.points.allSatisfy { $0.result?.bitsPerByte != nil && $0.interval != nil })
        let rows = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n")
        #expect(rows.count == 4 && rows[0].hasPrefix("series,length"))
        for plot in [svg, folder.appendingPathComponent("s-positions.svg").path] {
            let text = try String(contentsOfFile: plot, encoding: .utf8)
            #expect(text.hasPrefix("<svg") && text.contains("polyline") && text.contains("trained length"))
            #expect(XMLParser(data: Data(text.utf8)).parse(), "\(plot) is not well-formed XML")
        }
        #expect(report.table().contains("perplexity = exp(token-weighted mean NLL)"))
    }

    @Test("Unsupported lengths are reported, options are validated, compare of a model with itself is zero")
    func edges() throws {
        let gpt2 = modelFolder.appendingPathComponent("gpt2-bf16").path
        let raw = FileManager.default.temporaryDirectory.appendingPathComponent("sweep-\(UUID().uuidString).u16").path
        try Data((0..<1000).flatMap { [UInt8($0 % 96), 0] }).write(to: URL(fileURLWithPath: raw))
        defer { try? FileManager.default.removeItem(atPath: raw) }
        let command = try SweepCommand.parse(["--checkpoint", gpt2, "--data", raw, "--lengths", "64,256", "--budget", "300"])
        try command.run()
        #expect(throws: (any Error).self) { try SweepCommand.parse(["--checkpoint", gpt2, "--data", raw, "--protocol", "sliding:0"]) }
        #expect(throws: (any Error).self) { try SweepCommand.parse(["--checkpoint", gpt2, "--data", raw, "--bos", "every"]) }
        #expect { try SweepCommand.parse(["--checkpoint", gpt2, "--data", raw, "--lengths", "3q"]).run() } throws: { "\($0)".contains("3q") }
        #expect { try SweepCommand.parse(["--checkpoint", gpt2, "--data", raw, "--budget", "5000"]).run() } throws: { "\($0)".contains("1000 tokens") }
        try CompareCommand.parse([bytes, bytes, "--data", kjv, "--budget", "300", "--bootstrap", "50", "--json"]).run()
        #expect { try CompareCommand.parse([gpt2, gpt2, "--data", raw, "--length", "256"]).run() } throws: { "\($0)".contains("128 rows") }
    }
}
