import Evaluation
import Foundation
import Reports
import Testing
import TestSupport

@testable import ExtrapolateCLI

/// What a user sees of config keys nobody read: `inspect` lists them, `sweep` refuses one that changes the model
/// unless told otherwise, and every result records them.
@Suite("Config keys not read, as the commands show them")
struct ConfigKeysCommandTests {
    /// A copy of the llama-bytes fixture whose config.json also sets `extra`.
    func llama(with extra: [String: Any], in folder: ScratchFolder) throws -> String {
        let copy = folder.path("llama-\(UUID().uuidString.prefix(8))")
        try FileManager.default.copyItem(atPath: Repository.model("llama-bytes"), toPath: copy)
        let url = URL(fileURLWithPath: copy + "/config.json")
        var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        object.merge(extra) { _, new in new }
        try JSONSerialization.data(withJSONObject: object).write(to: url)
        return copy
    }

    func tokens(in folder: ScratchFolder) throws -> String {
        let path = folder.path("tokens.u16")
        try Data((0..<2000).flatMap { [UInt8($0 % 96), 0] }).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test("inspect lists an unknown key and marks one that changes the model; it refuses neither")
    func inspectLists() throws {
        let folder = try ScratchFolder("keys")
        defer { folder.remove() }
        let path = try llama(with: ["frobnication_depth": 3, "attn_logit_softcapping": 50.0], in: folder)
        let (architecture, notes, trained, audit) = try Extrapolate.Inspect.parse([path]).load()
        var report = InspectReport(architecture: architecture, length: 64)
        report.notes = notes
        report.trainedLength = trained
        report.configNotRead = audit?.unread ?? []
        let text = report.text()
        #expect(text.contains("not read: frobnication_depth = 3"))
        #expect(text.contains("not read, changes the model: attn_logit_softcapping = 50 (soft-caps attention logits"))
        let json = try report.json()
        #expect(json.contains("\"changesModel\"") && json.contains("frobnication_depth"))
    }

    @Test("sweep refuses a model-changing key in one line; allowed, every point warns and the CSV records the keys")
    func sweepRefusesThenRecords() throws {
        let folder = try ScratchFolder("keys")
        defer { folder.remove() }
        let path = try llama(with: ["frobnication_depth": 3, "final_logit_softcapping": 30.0], in: folder)
        let data = try tokens(in: folder)
        let base = ["--checkpoint", path, "--data", data, "--lengths", "32,64", "--budget", "128", "--bootstrap", "0"]
        #expect {
            try Extrapolate.Sweep.parse(base).run()
        } throws: { error in
            let text = "\(error)"
            return text.contains("'final_logit_softcapping' = 30") && text.contains("--allow-unknown-config-keys")
                && !text.contains("\n")
        }
        let json = folder.path("sweep.json")
        let csv = folder.path("sweep.csv")
        try Extrapolate.Sweep.parse(
            base + ["--allow-unknown-config-keys", "--json-output", json, "--csv", csv]
        ).run()
        let result = try ReportJSON.decode(SweepResult.self, from: Data(contentsOf: URL(fileURLWithPath: json)))
        #expect(result.points.count == 2)
        for point in result.points {
            #expect(point.configNotRead == ["final_logit_softcapping = 30", "frobnication_depth = 3"])
            #expect(point.warnings.contains { $0.contains("final_logit_softcapping = 30") })
        }
        #expect(result.settings.allowUnknownConfigKeys == true)
        let lines = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n").map(String.init)
        let header = lines[0].split(separator: ",").map(String.init)
        let column = try #require(header.firstIndex(of: "config_not_read"))
        #expect(header[column + 1] == "precision" && column + 2 == header.count)
        #expect(lines[1].hasSuffix("final_logit_softcapping = 30; frobnication_depth = 3,float32"))
    }

    @Test("A config whose every key is read records nothing, and its settings hash is what it was before the flag")
    func cleanConfigRecordsNothing() throws {
        let folder = try ScratchFolder("keys")
        defer { folder.remove() }
        let json = folder.path("sweep.json")
        try Extrapolate.Sweep.parse([
            "--checkpoint", Repository.model("llama-bytes"), "--data", try tokens(in: folder), "--lengths", "32",
            "--budget", "64", "--bootstrap", "0", "--json-output", json,
        ]).run()
        let result = try ReportJSON.decode(SweepResult.self, from: Data(contentsOf: URL(fileURLWithPath: json)))
        #expect(result.points.allSatisfy { $0.configNotRead == nil })
        #expect(result.settings.allowUnknownConfigKeys == nil)
        let encoded = String(decoding: try JSONEncoder().encode(result.settings), as: UTF8.self)
        #expect(!encoded.contains("allowUnknownConfigKeys"))
    }
}
