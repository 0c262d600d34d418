import ArgumentParser
import Evaluation
import Foundation
import Reports
import Testing
import TestSupport

@testable import ExtrapolateCLI

/// The trained length L decides every multiple: where it comes from is said with every result, and the user can
/// set it when nothing recorded it.
@Suite("The trained length: set, read from the checkpoint, and said where it came from")
struct TrainedLengthTests {
    let kjv = Repository.kjvValidation

    /// 2,000 tokens every fixture's 96-token vocabulary holds.
    func tokens(in folder: ScratchFolder) throws -> String {
        let path = folder.path("tokens.u16")
        try Data((0..<2000).flatMap { [UInt8($0 % 96), 0] }).write(to: URL(fileURLWithPath: path))
        return path
    }

    func sweep(_ arguments: [String], in folder: ScratchFolder) throws -> SweepResult {
        let json = folder.path("sweep-\(UUID().uuidString).json")
        try Extrapolate.Sweep.parse(arguments + ["--bootstrap", "0", "--json-output", json]).run()
        return try ReportJSON.decode(SweepResult.self, from: Data(contentsOf: URL(fileURLWithPath: json)))
    }

    /// A copy of the bloom-8h fixture whose config.json has no length key at all, as a Trainer run saves BLOOM.
    func bloomWithoutLength(in folder: ScratchFolder) throws -> String {
        let copy = folder.path("bloom-trainer")
        try FileManager.default.copyItem(atPath: Repository.model("bloom-8h"), toPath: copy)
        let config = copy + "/config.json"
        var object = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: config))) as? [String: Any])
        object["seq_length"] = nil
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: config))
        return copy
    }

    @Test("Each source is named: trainer metadata, nanoGPT's block_size, config.json's key, an assumed default")
    func sources() throws {
        let folder = try ScratchFolder("trained")
        defer { folder.remove() }
        let cases: [(String, Int, String)] = [
            (Repository.demo("alibi", step: 500), 64, "checkpoint metadata: extrapolate.trainedLength"),
            (Repository.model("nanogpt"), 0, "checkpoint metadata: model_args.block_size"),
            (Repository.model("llama-bytes"), 64, "config: max_position_embeddings"),
            (Repository.model("bloom-8h"), 64, "config: seq_length"),
            (
                try bloomWithoutLength(in: folder), 2048,
                "assumed default: bloom without seq_length or max_position_embeddings"
            ),
        ]
        let raw = try tokens(in: folder)
        for (path, tokens, source) in cases {
            let data = path.hasPrefix(Repository.root.path + "/Datasets") ? kjv : raw
            let result = try sweep(
                ["--checkpoint", path, "--data", data, "--lengths", "16", "--budget", "64"], in: folder)
            let summary = try #require(result.checkpoints.first)
            #expect(summary.trainedLengthSource == source, "\(path)")
            if tokens > 0 { #expect(summary.trainedLength == tokens, "\(path)") }
            #expect(result.points.allSatisfy { $0.trainedLengthSource == source })
        }
    }

    @Test("--trained-length sets L: multiples follow it and the results say it was configured")
    func configured() throws {
        let folder = try ScratchFolder("trained")
        defer { folder.remove() }
        let bloom = try bloomWithoutLength(in: folder)
        let result = try sweep(
            [
                "--checkpoint", bloom, "--data", try tokens(in: folder), "--lengths", "1x,4x", "--budget", "256",
                "--trained-length", "32",
            ],
            in: folder)
        #expect(result.points.map(\.length) == [32, 128])
        #expect(result.points.map(\.multiple) == [1, 4])
        #expect(result.checkpoints.first?.trainedLength == 32)
        #expect(result.checkpoints.first?.trainedLengthSource == "configured: --trained-length")
        #expect(throws: (any Error).self) {
            try Extrapolate.Sweep.parse(["--checkpoint", bloom, "--data", kjv, "--trained-length", "1"])
        }
    }

    @Test("inspect says where L came from, and learned positions by their table instead of 'none'")
    func inspect() throws {
        let folder = try ScratchFolder("trained")
        defer { folder.remove() }
        var report = InspectReport(
            architecture: try Extrapolate.Inspect.parse([Repository.model("gpt2")]).load().0,
            length: 16)
        let (architecture, _, trained, _) = try Extrapolate.Inspect.parse([try bloomWithoutLength(in: folder)]).load()
        #expect(trained?.source == .assumedDefault && trained?.tokens == architecture.trainedLength)
        let text = report.text()
        #expect(text.contains("Position: learned absolute positions ("))
        #expect(text.contains("added to the input: defined up to"))
        #expect(!text.contains("Position: nope"))
        report.trainedLength = trained
        #expect(report.text().contains("trained at    2048 tokens (assumed default: bloom without"))
    }

    @Test("--architecture is refused for a checkpoint that carries its own, and a missing file is an error")
    func architectureGivenTwice() throws {
        let demo = Repository.demo("alibi", step: 500)
        #expect {
            try Extrapolate.Sweep.parse([
                "--checkpoint", demo, "--data", kjv, "--architecture", Repository.model("llama-bytes") + "/config.json",
            ]).run()
        } throws: { "\($0)".contains("carries its own architecture") && "\($0)".contains("drop --architecture") }
        #expect {
            try Extrapolate.Sweep.parse([
                "--checkpoint", Repository.model("nanogpt"), "--data", kjv, "--architecture", "/no/such/arch.json",
            ]).run()
        } throws: { "\($0)".contains("/no/such/arch.json") && "\($0)".contains("no such file") }
    }
}
