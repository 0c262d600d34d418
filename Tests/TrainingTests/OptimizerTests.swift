import Checkpoints
import Engine
import Foundation
import Kernels
import Testing
import TestSupport
import Training

/// `Tests/Fixtures/make_training.py`'s references: torch.optim.AdamW on torch's gradients, and 20 steps of training.
@Suite("AdamW and training match PyTorch")
struct OptimizerTests {
    static let cases = ["spec-t5", "gpt2"]

    static func tensors(_ path: String) throws -> [String: [Float]] {
        let file = try SafetensorsFile(path: path)
        var result: [String: [Float]] = [:]
        for info in file.tensors {
            var values = [Float](repeating: 0, count: info.count)
            try values.withUnsafeMutableBufferPointer { try file.convert(info, into: $0.baseAddress!) }
            result[info.name] = values
        }
        return result
    }

    @Test("AdamW steps with clipping and weight decay equal torch.optim.AdamW's to 1e-6", arguments: cases)
    func adamWSteps(_ name: String) throws {
        let folder = Repository.model(name)
        let model = try LanguageModel.load(folder, weights: .float32)
        // torch's gradients, bound the way the weights are (so tied and fused tensors line up).
        let gradients = try Training.boundGradients(
            of: model, from: Checkpoint(file: folder + "/gradients.safetensors"))
        var settings = OptimizerSettings()
        settings.learningRate = 1e-3
        let trainer = try Trainer(model: model, settings: settings)
        let steps = Int(try SafetensorsFile(path: folder + "/adamw-steps.safetensors").metadata["steps"] ?? "") ?? 0
        #expect(steps == 3)
        for _ in 0..<steps { trainer.apply(gradients, learningRate: 1e-3) }
        let expected = try Self.tensors(folder + "/adamw-steps.safetensors")
        let ours = trainer.namedWeights()
        #expect(Set(ours.keys) == Set(expected.keys))
        for (tensor, values) in ours {
            guard let reference = expected[tensor] else { continue }
            let largest = reference.map { abs($0) }.max() ?? 0
            let worst = zip(values, reference).map { abs($0 - $1) }.max() ?? 0
            #expect(worst <= 1e-6 * largest, "\(name) \(tensor): max |Δ| \(worst) > 1e-6 × \(largest)")
        }
    }

    struct Curve: Decodable {
        struct Step: Decodable {
            var step: Int
            var starts: [Int]
            var loss: Double
            var gradientNorm: Double
            var learningRate: Double
        }
        var length: Int
        var batch: Int
        var warmup: Int
        var peakLearningRate: Double
        var steps: [Step]
    }

    @Test("20 steps of training give PyTorch's loss curve to 1e-4", arguments: cases)
    func lossCurve(_ name: String) throws {
        let folder = Repository.model(name)
        let curve = try JSONDecoder().decode(
            Curve.self, from: Data(contentsOf: URL(fileURLWithPath: folder + "/training-curve.json")))
        let tokens = try GradientFixtures.referenceTokens(name)
        let model = try LanguageModel.load(folder, weights: .float32)
        var settings = OptimizerSettings()
        settings.learningRate = curve.peakLearningRate
        settings.warmup = curve.warmup
        let trainer = try Trainer(model: model, settings: settings)
        for step in curve.steps {
            let lr = settings.learningRate(step: step.step, of: curve.steps.count)
            #expect(abs(lr - step.learningRate) <= 1e-12, "step \(step.step): lr \(lr) vs \(step.learningRate)")
            let windows = step.starts.map { Array(tokens[$0..<$0 + curve.length + 1]) }
            let report = try trainer.step(windows: windows, learningRate: lr)
            #expect(
                abs(report.loss - step.loss) <= 1e-4 * step.loss,
                "\(name) step \(step.step): loss \(report.loss) vs \(step.loss)")
            #expect(
                abs(report.gradientNorm - step.gradientNorm) <= 1e-3 * step.gradientNorm,
                "\(name) step \(step.step): gradient norm \(report.gradientNorm) vs \(step.gradientNorm)")
        }
    }
}
