import Architecture
import Checkpoints
import Engine
import Evaluation
import Foundation
import Testing
import TestSupport
import TokenData

/// The two sets of demo probes: trained by PyTorch (`Datasets/demo/train.py`), and by `extrapolate train` with the same
/// preset, data, schedule and seed policy (`Datasets/demo-swift`, step 2000 of each).
enum DemoSet: String, CaseIterable, Sendable {
    case pytorch = "demo"
    case swift = "demo-swift"
}

/// The committed demo checkpoints and the paper's qualitative findings.
enum Demo {
    static let root = Repository.root
    static let trained = 64
    /// Targets scored at every length: the first 8,192 of the validation split.
    static let budget = 8192

    static func checkpoint(_ method: ProbeMethod, step: Int = 2000, set: DemoSet = .pytorch) -> String {
        root.appendingPathComponent("Datasets/\(set.rawValue)/\(method.rawValue)/step-\(step).safetensors").path
    }

    static let tokens: [Int32] = {
        let dataset = try? TokenDataset(path: root.appendingPathComponent("Datasets/kjv/valid.tokens.zst").path)
        return (try? dataset?.tokens(in: 0..<(budget + 1))) ?? []
    }()

    static func perplexity(_ method: ProbeMethod, _ length: Int, set: DemoSet = .pytorch) throws -> Double {
        let model = try LanguageModel.load(checkpoint(method, set: set))
        return try Evaluator.evaluate(model: model, tokens: tokens, options: WindowOptions(length: length)).perplexity
    }
}

/// What `train.py` records in each checkpoint's metadata: its own mean NLL on the first `targets` validation targets.
struct TrainingReference: Decodable {
    var targets: Int
    var meanNLL: [String: Double]
}

@Suite("Train short, test long: the demo checkpoints")
struct DemoShapeTests {
    @Test("Every committed checkpoint carries exactly the probe preset and its step", arguments: ProbeMethod.allCases)
    func architectures(_ method: ProbeMethod) throws {
        for step in [500, 1000, 2000] {
            let model = try LanguageModel.load(Demo.checkpoint(method, step: step))
            #expect(model.architecture.contentHash == Architecture.probe(method).contentHash)
            #expect(model.architecture.trainedLength == Demo.trained)
        }
        #expect(Demo.tokens.count == Demo.budget + 1)
    }

    @Test(
        "The engine reproduces the training script's own validation NLL of every committed checkpoint",
        arguments: ProbeMethod.allCases)
    func matchesTrainingScript(_ method: ProbeMethod) throws {
        for step in [500, 1000, 2000] {
            let path = Demo.checkpoint(method, step: step)
            let metadata = try CheckpointLocation.discover(path).open().metadata
            let reference = try JSONDecoder().decode(
                TrainingReference.self, from: Data((metadata["extrapolate.referenceNLL"] ?? "").utf8))
            let model = try LanguageModel.load(path)
            let tokens = Array(Demo.tokens.prefix(reference.targets + 1))
            for (length, expected) in reference.meanNLL {
                let measured = try Evaluator.evaluate(
                    model: model, tokens: tokens, options: WindowOptions(length: Int(length) ?? 0)
                ).meanNLL
                // fp16 weights converted exactly on both sides; what remains is fp32 summation order.
                #expect(
                    abs(measured - expected) <= 1e-5,
                    "\(method) step \(step) at \(length): engine \(measured), train.py \(expected)")
            }
        }
    }

    // Margins come from Docs/demo.md (16,384 targets; this test scores the first 8,192): sinusoidal's r(2) is
    // 2.7 (the paper: 2.2–2.6), ALiBi's r(8) is 0.98 (the paper: ≈ 0.93–0.96 at r(16)), and at 8L T5 (11.6)
    // sits between ALiBi (4.4) and sinusoidal / rotary (24 / 40), as in the paper's Tables 2–5.

    @Test(
        "Sinusoidal falls apart past its training length: perplexity at 2L more than twice that at L",
        arguments: DemoSet.allCases)
    func sinusoidalExplodes(_ set: DemoSet) throws {
        let (atL, at2L) = (
            try Demo.perplexity(.sinusoidal, Demo.trained, set: set),
            try Demo.perplexity(.sinusoidal, 2 * Demo.trained, set: set)
        )
        #expect(at2L > 2 * atL, "\(set) sinusoidal: \(atL) at L, \(at2L) at 2L")
    }

    @Test(
        "ALiBi at 8L stays within 2% of (or below) its perplexity at L, and keeps improving to 16L",
        arguments: DemoSet.allCases)
    func alibiHolds(_ set: DemoSet) throws {
        let atL = try Demo.perplexity(.alibi, Demo.trained, set: set)
        let at8L = try Demo.perplexity(.alibi, 8 * Demo.trained, set: set)
        let at16L = try Demo.perplexity(.alibi, 16 * Demo.trained, set: set)
        #expect(at8L <= 1.02 * atL, "\(set) alibi: \(atL) at L, \(at8L) at 8L")
        #expect(at16L <= 1.02 * atL, "\(set) alibi: \(atL) at L, \(at16L) at 16L")
    }

    @Test(
        "At 8L: ALiBi < T5 bias < sinusoidal and rotary; every method but ALiBi at least 2× its value at L",
        arguments: DemoSet.allCases)
    func orderingAt8L(_ set: DemoSet) throws {
        let length = 8 * Demo.trained
        let alibi = try Demo.perplexity(.alibi, length, set: set), t5 = try Demo.perplexity(.t5, length, set: set)
        let rotary = try Demo.perplexity(.rotary, length, set: set)
        let sinusoidal = try Demo.perplexity(.sinusoidal, length, set: set)
        #expect(
            alibi < t5 && t5 < rotary && t5 < sinusoidal,
            "\(set) at 8L: alibi \(alibi), t5 \(t5), rotary \(rotary), sinusoidal \(sinusoidal)")
        for method in [ProbeMethod.t5, .rotary, .sinusoidal, .nope] {
            let (atL, at8L) = (
                try Demo.perplexity(method, Demo.trained, set: set), try Demo.perplexity(method, length, set: set)
            )
            #expect(at8L > 2 * atL, "\(set) \(method): \(atL) at L, \(at8L) at 8L")
        }
    }

    @Test(
        "The probes retrained by extrapolate train carry the probe preset and say how they were trained",
        arguments: ProbeMethod.allCases)
    func retrainedInSwift(_ method: ProbeMethod) throws {
        let path = Demo.checkpoint(method, set: .swift)
        let model = try LanguageModel.load(path)
        #expect(model.architecture.contentHash == Architecture.probe(method).contentHash)
        let metadata = try CheckpointLocation.discover(path).open().metadata
        #expect(
            metadata["extrapolate.training"]?.hasPrefix("extrapolate train: step 2000 of 2000, batch 32x1x64") == true)
    }
}
