import Engine
import Evaluation
import Foundation
import ResultStore
import TestSupport
import Testing
import TokenData

@testable import Service

/// A checkpoint is never evaluated on data tokenized for another model.
@Suite struct DataMustMatchTheCheckpointsTokenizer {
    func modelFolder(_ scratch: ScratchFolder, tokenizer kind: String?) throws -> String {
        let folder = scratch.path("runs/r/checkpoint-1")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for file in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(atPath: "\(Repository.model("gpt2"))/\(file)", toPath: "\(folder)/\(file)")
        }
        if let kind {
            try FileManager.default.copyItem(
                atPath: Repository.fixtures.appendingPathComponent("tokenizers/\(kind)/tokenizer.json").path,
                toPath: "\(folder)/tokenizer.json")
        }
        return folder
    }

    @Test func theCheckComparesHashesAndVocabularies() throws {
        let scratch = try ScratchFolder("tokcheck")
        defer { scratch.remove() }
        let model = try LanguageModel.load(try modelFolder(scratch, tokenizer: "gpt2"))
        let gpt2 = try Tokenizer(path: Repository.fixtures.appendingPathComponent("tokenizers/gpt2").path)
        let llama3 = try Tokenizer(path: Repository.fixtures.appendingPathComponent("tokenizers/llama3").path)
        func data(hash: String?, vocabulary: Int?) -> EvaluationData {
            EvaluationData(
                reference: DataReference(path: "d"), tokens: [1, 2, 3], tokenizer: "t", tokenizerHash: hash,
                vocabularySize: vocabulary)
        }
        try data(hash: gpt2.hash, vocabulary: 96).checkCompatible(with: model, checkpoint: "c")
        try data(hash: nil, vocabulary: nil).checkCompatible(with: model, checkpoint: "c")
        #expect(throws: EvaluationError.self) {
            try data(hash: llama3.hash, vocabulary: 96).checkCompatible(with: model, checkpoint: "c")
        }
        #expect(throws: EvaluationError.self) {
            try data(hash: nil, vocabulary: 1200).checkCompatible(with: model, checkpoint: "c")
        }
    }

    @Test func theDaemonRecordsTheMismatchAsAFailure() async throws {
        let scratch = try ScratchFolder("tokdaemon")
        defer { scratch.remove() }
        _ = try modelFolder(scratch, tokenizer: "llama3")
        let text = scratch.path("text.txt")
        try String(repeating: "In the beginning God created the heaven and the earth.\n", count: 200).write(
            toFile: text, atomically: true, encoding: .utf8)
        var options = PackOptions(format: .text)
        options.textTokenizer = try Tokenizer(path: Repository.fixtures.appendingPathComponent("tokenizers/gpt2").path)
        let data = scratch.path("data.tokens.zst")
        try Packer.pack([text], output: data, options: options)
        var configuration = DaemonConfiguration(
            targets: [WatchTarget(folder: scratch.path("runs"), settings: try quickSettings(data: data, budget: 64))],
            store: scratch.path("results.sqlite"))
        configuration.quietSeconds = 0
        let store = try SQLiteStore(writingTo: configuration.store)
        let summary = try await Daemon(configuration: configuration, store: store, logger: .quiet).runOnce()
        #expect(summary.finished == ["failed": 1])
        let error = try #require(try await store.status().jobs.first?.error)
        #expect(error.contains("vocabulary has 1200 tokens") && error.contains("--tokenizer"), "\(error)")
    }
}
