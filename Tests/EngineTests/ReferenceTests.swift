import Engine
import Foundation
import Testing
import TestSupport

/// Reference fixtures written by `Tests/Fixtures/make_reference.py` (transformers and plain PyTorch).
enum Fixtures {
    static let models = Repository.models

    static var modelNames: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: models.path)) ?? []).filter { !$0.hasPrefix(".") }
            .sorted()
    }

    struct Reference: Decodable {
        var tokens: [Int32]
        var logprobs: [Double]
        var source: String
        var stored_dtype: String
    }

    static func reference(_ name: String) throws -> Reference {
        let data = try Data(contentsOf: models.appendingPathComponent(name).appendingPathComponent("reference.json"))
        return try JSONDecoder().decode(Reference.self, from: data)
    }
}

@Suite("Engine matches the reference implementations")
struct ReferenceTests {
    @Test("every committed fixture is present")
    func fixturesPresent() {
        // 19 transformers families/rope types (mistral and qwen2 among them) and 12 spec methods; a lost folder must
        // not pass silently.
        #expect(Fixtures.modelNames.count >= 31, "found \(Fixtures.modelNames)")
    }

    @Test("per-token log-probabilities within 1e-4", arguments: Fixtures.modelNames)
    func logProbabilities(_ name: String) throws {
        let reference = try Fixtures.reference(name)
        let model = try LanguageModel.load(Fixtures.models.appendingPathComponent(name).path)
        let values = try model.logProbabilities(reference.tokens)
        try #require(values.count == reference.logprobs.count)
        let differences = zip(values, reference.logprobs).map { abs($0 - $1) }
        let worst = differences.enumerated().max { $0.element < $1.element }!
        #expect(
            worst.element <= 1e-4,
            "\(name) (\(reference.source), stored \(reference.stored_dtype)): max |Δ log-prob| = \(worst.element) at token \(worst.offset + 1)"
        )
    }
}

/// A PyTorch file with no architecture of its own binds with the one given (`--architecture`).
@Suite struct ArchitectureGivenSeparately {
    @Test func aBareStateDictBindsWithTheGivenConfig() throws {
        let scratch = try ScratchFolder("bare-bin")
        defer { scratch.remove() }
        let bare = scratch.path("weights.bin")
        try FileManager.default.copyItem(atPath: Repository.model("gpt2-bin") + "/pytorch_model.bin", toPath: bare)
        #expect(throws: EngineError.self) { try LanguageModel.load(bare) }
        let model = try LanguageModel.load(bare, architectureFile: Repository.model("gpt2") + "/config.json")
        let reference = try Fixtures.reference("gpt2")
        let values = try model.logProbabilities(reference.tokens)
        let worst = zip(values, reference.logprobs).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= 1e-4)
    }

    @Test func aNanoGPTFileRecordsItsStep() throws {
        #expect(try LanguageModel.load(Repository.model("nanogpt-legacy")).recordedStep == 9)
        #expect(try LanguageModel.load(Repository.model("gpt2-bin")).recordedStep == nil)
    }
}
