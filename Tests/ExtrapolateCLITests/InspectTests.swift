import Architecture
import Foundation
import Reports
import Testing
import TestSupport

@testable import ExtrapolateCLI

let fixtureFolder = Repository.fixtures.appendingPathComponent("configs")
typealias Inspect = Extrapolate.Inspect

@Suite("extrapolate inspect")
struct InspectTests {
    @Test("Resolves an HF config to its report, with YaRN frequencies at the requested length")
    func report() throws {
        let architecture = try ArchitectureFile.load(path: fixtureFolder.appendingPathComponent("llama-yarn").path)
        let report = InspectReport(architecture: architecture, length: 256)
        let text = report.text()
        #expect(text.contains("model.layers.1.self_attn.k_proj.weight"))
        #expect(text.contains("extension           yarn"))
        #expect(text.contains("attention factor    1.13863"))
        let json = try report.json()
        #expect(json.contains(#""contentHash""#) && json.contains(#""inverseFrequencies""#))
    }

    @Test("Architecture JSON files load by content, and bad files fail with the path")
    func fileKinds() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("inspect-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let good = directory.appendingPathComponent("probe.json")
        try Architecture.probe(.t5).prettyJSON().write(to: good)
        #expect(try ArchitectureFile.load(path: good.path) == Architecture.probe(.t5))
        let bad = directory.appendingPathComponent("bad.json")
        try Data(#"{"hello": 1}"#.utf8).write(to: bad)
        #expect { try ArchitectureFile.load(path: bad.path) } throws: { "\($0)".contains("bad.json") }
        let truncated = directory.appendingPathComponent("truncated.json")
        try Data(try Architecture.probe(.t5).prettyJSON().prefix(200)).write(to: truncated)
        #expect { try ArchitectureFile.load(path: truncated.path) } throws: { "\($0)".contains("truncated.json") }
        #expect { try ArchitectureFile.load(path: "/nonexistent.json") } throws: { "\($0)".contains("no such file") }
        // A malformed config.json names the line and column of the mistake.
        let broken = directory.appendingPathComponent("config.json")
        try Data("{\n  \"model_type\": \"gpt2\",\n  \"n_embd\": ,\n}".utf8).write(to: broken)
        #expect { try ArchitectureFile.load(path: broken.path) } throws: { "\($0)".contains("line 3, column") }
        #expect { try ArchitectureFile.load(path: directory.path) } throws: { "\($0)".contains("line 3, column") }
        // What `inspect --json` prints loads back as the architecture (Docs/your-pytorch-model.md, step 1).
        let inspected = directory.appendingPathComponent("inspected.json")
        try InspectReport(architecture: Architecture.probe(.alibi), length: 64).json().write(
            to: inspected, atomically: true, encoding: .utf8)
        #expect(try ArchitectureFile.load(path: inspected.path) == Architecture.probe(.alibi))
    }

    @Test("Arguments are validated: exactly one source, a known preset, a positive length")
    func argumentValidation() {
        #expect(throws: (any Error).self) { try Inspect.parse([]) }
        #expect(throws: (any Error).self) { try Inspect.parse(["--preset", "nope-nope"]) }
        #expect(throws: (any Error).self) { try Inspect.parse(["x.json", "--preset", "probe-alibi"]) }
        #expect(throws: (any Error).self) { try Inspect.parse(["--preset", "probe-alibi", "--length", "0"]) }
        #expect((try? Inspect.parse(["--preset", "probe-alibi", "--json"])) != nil)
    }

    @Test("Help text names the command's inputs")
    func help() {
        let help = Extrapolate.helpMessage(for: Inspect.self)
        #expect(help.contains("config.json"))
        #expect(help.contains("--preset"))
        #expect(help.contains("probe-alibi"))
    }
}
