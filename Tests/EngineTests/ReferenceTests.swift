import Engine
import Kernels
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

/// Matrices kept at their stored 16-bit precision (`WeightStorage.stored`) widen to exactly the fp32 values a load
/// converts to, so every log-probability is the same bit for bit — through a transposed Conv1D matrix and a tied
/// head (GPT-2 in bf16), separate q/k/v stacked (Llama in f16), per-head fused q/k/v reordered in a PyTorch file
/// (GPT-NeoX in f16).
@Suite struct StoredPrecision {
    static var halfFixtures: [String] {
        Fixtures.modelNames.filter { (try? Fixtures.reference($0).stored_dtype).map { $0 != "float32" } ?? false }
    }

    @Test func everyStoredDtypeIsCovered() {
        #expect(Set(Self.halfFixtures).isSuperset(of: ["gpt2-bf16", "llama-f16", "gpt_neox-f16-bin"]))
    }

    @Test(arguments: halfFixtures)
    func keptAsStoredGivesTheSameNumbers(_ name: String) throws {
        let reference = try Fixtures.reference(name)
        let path = Fixtures.models.appendingPathComponent(name).path
        let widened = try LanguageModel.load(path, weights: .float32)
        let stored = try LanguageModel.load(path, weights: .stored)
        #expect(widened.heldPrecision == "float32")
        #expect(stored.heldPrecision == (reference.stored_dtype == "bfloat16" ? "bf16" : "f16"))
        #expect(stored.weightBytes < widened.weightBytes * 6 / 10, "matrices at 2 bytes a value")
        #expect(stored.wideningBytes > 0 && widened.wideningBytes == 0)
        let a = try widened.logProbabilities(reference.tokens)
        let b = try stored.logProbabilities(reference.tokens)
        #expect(a == b, "\(name): max |Δ| = \(zip(a, b).map { abs($0 - $1) }.max() ?? 0)")
    }

    /// A 16-bit checkpoint that does not fit its config is refused with each misshaped tensor named once, as an fp32
    /// load names them.
    @Test func misshapedHalfTensorsAreNamedOnce() throws {
        let scratch = try ScratchFolder("misshaped-half")
        defer { scratch.remove() }
        let folder = Repository.model("llama-f16")
        var config = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/config.json")))
                as? [String: Any])
        config["intermediate_size"] = 80
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: scratch.path("config.json")))
        func misshaped(_ weights: WeightStorage) throws -> [String] {
            let result = Result {
                try LanguageModel.load(folder, architectureFile: scratch.path("config.json"), weights: weights)
            }
            guard case .failure(let error) = result, case .binding(_, _, _, let misshaped)? = error as? EngineError
            else {
                Issue.record("the misshaped checkpoint loaded, or failed otherwise: \(result)")
                return []
            }
            return misshaped.map(\.name)
        }
        let stored = try misshaped(.stored)
        #expect(stored.count == 6 && Set(stored).count == stored.count, "\(stored)")  // 3 MLP matrices × 2 layers
        #expect(stored == (try misshaped(.float32)))
    }

    /// `automatic` keeps a small model widened at load (its fp32 copy costs less than `automaticLimit`).
    @Test func automaticWidensASmallModel() throws {
        let model = try LanguageModel.load(Repository.model("llama-f16"))
        #expect(model.heldPrecision == "float32")
    }

    /// Every IEEE half value widens as Swift's own conversion does (the portable path and F16C alike).
    @Test func everyHalfValueWidensExactly() {
        let all = HalfBuffer(uninitialized: 1 << 16, format: .f16)
        for bits in 0..<(1 << 16) { all.pointer[bits] = UInt16(bits) }
        let out = FloatBuffer(uninitialized: 1 << 16)
        all.widenAll(into: out.pointer)
        var wrong: [Int] = []
        for bits in 0..<(1 << 16) {
            let expected = Float(Float16(bitPattern: UInt16(bits)))
            let got = out.pointer[bits]
            if expected.isNaN ? !got.isNaN : expected.bitPattern != got.bitPattern { wrong.append(bits) }
        }
        #expect(wrong.isEmpty, "\(wrong.count) values differ, first 0x\(String(wrong.first ?? 0, radix: 16))")
    }
}
