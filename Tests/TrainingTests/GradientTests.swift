import Checkpoints
import Engine
import Foundation
import Kernels
import Testing
import TestSupport
import Training

/// The reference gradients `Tests/Fixtures/make_gradients.py` writes with torch.autograd, one per fixture model.
enum GradientFixtures {
    /// Every case the generator writes (its HF_CASES and SPEC_CASES): a case without its file fails, never skips.
    static let cases = [
        "gpt2", "opt", "opt-postln-project", "bloom-8h", "mpt", "gpt_neox-partial", "gpt_neox-sequential",
        "llama-gqa", "llama-mqa-headdim", "mistral-window", "qwen2", "qwen3", "olmo2", "phi3", "gemma", "gemma2",
        "spec-nope", "spec-sinusoidal-fairseq", "spec-sinusoidal-vaswani", "spec-alibi", "spec-rotary-interleaved",
        "spec-rotary-window", "spec-t5", "spec-kerple-log", "spec-kerple-power", "spec-xpos", "spec-sandwich",
        "spec-fire",
    ]

    struct Reference {
        var tokens: [Int32]
        var loss: Double
        var tensors: [String: (shape: [Int], values: [Float])]
    }

    /// The fixture's reference token sequence (`reference.json`).
    static func referenceTokens(_ name: String) throws -> [Int32] {
        struct File: Decodable { var tokens: [Int32] }
        let url = URL(fileURLWithPath: Repository.model(name) + "/reference.json")
        return try JSONDecoder().decode(File.self, from: Data(contentsOf: url)).tokens
    }

    static func reference(_ name: String) throws -> Reference {
        let file = try SafetensorsFile(path: Repository.model(name) + "/gradients.safetensors")
        let tokens = try JSONDecoder().decode([Int32].self, from: Data(file.metadata["tokens", default: "[]"].utf8))
        var tensors: [String: (shape: [Int], values: [Float])] = [:]
        for info in file.tensors {
            var values = [Float](repeating: 0, count: info.count)
            try values.withUnsafeMutableBufferPointer { try file.convert(info, into: $0.baseAddress!) }
            tensors[info.name] = (info.shape, values)
        }
        return Reference(tokens: tokens, loss: Double(file.metadata["loss", default: "nan"]) ?? .nan, tensors: tensors)
    }
}

@Suite("Gradients match torch.autograd")
struct GradientTests {
    @Test("every parameter's gradient within 1e-4 of its largest", arguments: GradientFixtures.cases)
    func matchesAutograd(_ name: String) throws {
        let reference = try GradientFixtures.reference(name)
        let folder = try ScratchFolder("gradients")
        defer { folder.remove() }
        let out = folder.path("gradients.safetensors")
        let summary = try Gradients.write(checkpoint: Repository.model(name), tokens: reference.tokens, to: out)
        #expect(
            abs(summary.loss - reference.loss) <= 1e-5 * max(1, reference.loss),
            "loss \(summary.loss) vs \(reference.loss)")
        let written = try SafetensorsFile(path: out)
        #expect(Set(written.tensors.map(\.name)) == Set(reference.tensors.keys), "tensor names differ")
        // A tensor whose true gradient is zero (a key bias: it shifts every score of a row alike, and softmax does
        // not see it) holds rounding noise in both implementations; its bound is the noise floor of the whole model,
        // 1e-6 of the largest gradient of any tensor, not 1e-4 of its own noise.
        let global = reference.tensors.values.map { $0.values.map { abs($0) }.max() ?? 0 }.max() ?? 0
        for info in written.tensors {
            guard let expected = reference.tensors[info.name] else { continue }
            #expect(info.shape == expected.shape, "\(info.name): shape \(info.shape) vs \(expected.shape)")
            var ours = [Float](repeating: 0, count: info.count)
            try ours.withUnsafeMutableBufferPointer { try written.convert(info, into: $0.baseAddress!) }
            let largest = expected.values.map { abs($0) }.max() ?? 0
            let bound = max(1e-4 * largest, 1e-6 * global)
            var worst: Float = 0
            var at = 0
            for (index, (a, b)) in zip(ours, expected.values).enumerated() where abs(a - b) > worst {
                (worst, at) = (abs(a - b), index)
            }
            #expect(
                worst <= bound,
                "\(name) \(info.name): max |Δ| \(worst) at \(at) (ours \(ours[at]), torch \(expected.values[at])) > \(bound) (1e-4 × \(largest))"
            )
        }
    }

    @Test("the training forward's loss is the evaluation's mean NLL")
    func lossMatchesEvaluation() throws {
        for name in ["gpt2", "llama-gqa", "spec-t5"] {
            let model = try LanguageModel.load(Repository.model(name), weights: .float32)
            let tokens = try GradientFixtures.reference(name).tokens
            let gradients = try Gradients.compute(model, tokens: tokens)
            let scores = try model.logProbabilities(tokens)
            let mean = -scores.reduce(0, +) / Double(scores.count)
            #expect(abs(gradients.loss - mean) <= 1e-5 * mean, "\(name): \(gradients.loss) vs \(mean)")
        }
    }

    @Test("tokens outside the vocabulary are refused with their position")
    func outOfVocabulary() throws {
        let model = try LanguageModel.load(Repository.model("gpt2"), weights: .float32)
        #expect {
            try Gradients.compute(model, tokens: [1, 2, 500, 3])
        } throws: { error in
            "\(error)".contains("token 500 at position 2") && "\(error)".contains("vocabulary of 96")
        }
    }
}
