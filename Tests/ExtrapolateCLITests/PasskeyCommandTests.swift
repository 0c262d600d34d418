import ArgumentParser
import Engine
import Evaluation
import Foundation
#if canImport(FoundationXML)
    import FoundationXML
#endif
import Reports
import TestSupport
import Testing

@testable import ExtrapolateCLI

@Suite("extrapolate passkey")
struct PasskeyCommandTests {
    static let llama = Repository.fixtures.appendingPathComponent("passkey/llama").path
    static let probe = Repository.root.appendingPathComponent("Datasets/demo/alibi/step-2000.safetensors").path

    static func run(_ arguments: [String]) throws {
        var command = try Extrapolate.parseAsRoot(["passkey"] + arguments)
        try command.run()
    }

    @Test("Every length and depth gets its trials, and the JSON says so")
    func cellsAndJSON() throws {
        let scratch = try ScratchFolder("passkey")
        defer { scratch.remove() }
        let output = scratch.path("passkey.json")
        try Self.run([
            "--checkpoint", Self.llama, "--lengths", "1x,2x", "--depths", "0,100", "--trials", "2", "--seed", "3",
            "--json-output", output,
        ])
        let result = try ReportJSON.decode(PasskeyResult.self, from: Data(contentsOf: URL(fileURLWithPath: output)))
        #expect(result.tokenizer == "llama" && result.trainedLength == 128 && result.seed == 3)
        #expect(result.cells.map(\.length) == [128, 128, 256, 256] && result.cells.map(\.depth) == [0, 100, 0, 100])
        for cell in result.cells {
            #expect(cell.skipped == nil && cell.trials.count == 2)
            #expect(cell.trials.map(\.key) == [Passkey.key(seed: 3, trial: 0), Passkey.key(seed: 3, trial: 1)])
            #expect(cell.trials.allSatisfy { $0.length <= cell.length && $0.length >= cell.length - 1 })
            #expect(cell.lower <= cell.accuracy && cell.accuracy <= cell.upper)
        }
    }

    @Test("A missing or mismatched tokenizer and impossible depths are refused with what to do")
    func refusals() throws {
        #expect {
            try Self.run(["--checkpoint", Self.probe, "--lengths", "16x"])
        } throws: { "\($0)".contains("no tokenizer.json beside the checkpoint") && "\($0)".contains("--bytes") }
        let gpt2 = Repository.fixtures.appendingPathComponent("tokenizers/gpt2").path
        #expect {
            try Self.run(["--checkpoint", Self.probe, "--tokenizer", gpt2, "--lengths", "16x"])
        } throws: { "\($0)".contains("the tokenizer has 1200 tokens but the model's vocabulary has 256") }
        #expect {
            _ = try Extrapolate.parseAsRoot(["passkey", "--checkpoint", Self.probe, "--depths", "0,120"])
        } throws: { Extrapolate.message(for: $0).contains("--depths takes per cents from 0 to 100, found '120'") }
    }

    @Test("A byte-level probe skips the lengths its prompt does not fit, saying how long the prompt is")
    func shortLengthsAreSkipped() throws {
        let model = try LanguageModel.load(Self.probe)
        let result = try PasskeyResult.run(
            model: model, checkpoint: Self.probe, encoding: .bytes, lengths: try LengthGrid(parsing: "1x,4x"),
            extensions: [], depths: [50], trials: 1, seed: 0)
        #expect(result.cells[0].skipped?.contains("the prompt without filler takes") == true)
        #expect(result.cells[1].skipped == nil && result.cells[1].trials[0].length == 256)
        #expect(PasskeyReport(result).text.contains("skipped"))
    }
}

@Suite struct PasskeyHeatmap {
    @Test("The heatmap is an SVG with a cell per length and depth, its exact values on hover")
    func heatmap() throws {
        let scratch = try ScratchFolder("heatmap")
        defer { scratch.remove() }
        let path = scratch.path("passkey.svg")
        var command = try Extrapolate.parseAsRoot([
            "passkey", "--checkpoint", PasskeyCommandTests.llama, "--lengths", "1x,2x", "--depths", "0,50,100",
            "--trials", "1", "--extensions", "yarn", "--svg", path,
        ])
        try command.run()
        for file in [path, scratch.path("passkey-yarn.svg")] {
            let data = try Data(contentsOf: URL(fileURLWithPath: file))
            let document = try XMLDocument(data: data)
            let cells = try document.nodes(forXPath: "//*[local-name()='g'][@class='cell']")
            #expect(cells.count == 6, "\(file): \(cells.count) cells")
            let titles = try document.nodes(forXPath: "//*[local-name()='g'][@class='cell']/*[local-name()='title']")
            #expect(titles.allSatisfy { ($0.stringValue ?? "").contains("95% Wilson") })
        }
    }
}

@Suite("sweep --tasks")
struct SweepTasks {
    @Test("perplexity,passkey adds each checkpoint's passkey cells to the sweep; passkey alone needs no data")
    func tasks() throws {
        let scratch = try ScratchFolder("sweep-tasks")
        defer { scratch.remove() }
        let data = Repository.root.appendingPathComponent("Datasets/kjv/valid.tokens.zst").path
        let both = scratch.path("both.json")
        var command = try Extrapolate.parseAsRoot([
            "sweep", "--checkpoint", PasskeyCommandTests.probe, "--data", data, "--tasks", "perplexity,passkey",
            "--bytes", "--lengths", "4x,8x", "--depths", "50", "--trials", "1", "--budget", "1024", "--json-output",
            both,
        ])
        try command.run()
        let sweep = try ReportJSON.decode(SweepResult.self, from: Data(contentsOf: URL(fileURLWithPath: both)))
        #expect(sweep.points.count == 2 && sweep.passkey?.count == 1)
        #expect(sweep.passkey?.first?.cells.map(\.length) == [256, 512])
        let alone = scratch.path("alone.json")
        command = try Extrapolate.parseAsRoot([
            "sweep", "--checkpoint", PasskeyCommandTests.probe, PasskeyCommandTests.probe, "--tasks", "passkey",
            "--bytes", "--lengths", "4x", "--depths", "0,100", "--trials", "1", "--passkey-seed", "9",
            "--json-output", alone, "--csv", scratch.path("alone.csv"),
        ])
        try command.run()
        let results = try ReportJSON.decode(
            [PasskeyResult].self, from: Data(contentsOf: URL(fileURLWithPath: alone)))
        #expect(results.count == 2 && results.allSatisfy { $0.seed == 9 && $0.cells.count == 2 })
        // Both checkpoints' trials in one file under one header.
        let rows = try String(contentsOfFile: scratch.path("alone-passkey.csv"), encoding: .utf8)
            .split(separator: "\n")
        #expect(rows.count == 1 + 4 && rows.filter { $0.hasPrefix("checkpoint,") }.count == 1, "\(rows)")
        #expect {
            _ = try Extrapolate.parseAsRoot(["sweep", "--checkpoint", "x", "--tasks", "perplexity,retrieval"])
        } throws: { Extrapolate.message(for: $0).contains("--tasks takes perplexity and passkey, found 'retrieval'") }
    }
}
