import Checkpoints
import Engine
import Foundation
import Kernels

/// Trains a loaded model in place: its bound fp32 weights are the parameters, so the same `LanguageModel` scores
/// with the weights of the last step.
///
/// ```swift
/// let model = try LanguageModel.load("init.safetensors", weights: .float32)
/// let trainer = try Trainer(model: model, settings: OptimizerSettings())
/// let report = try trainer.step(windows: batch, learningRate: 2e-3)   // batch: [[Int32]] of L + 1 tokens each
/// ```
public final class Trainer: @unchecked Sendable {
    /// The model being trained (its weights change with every step).
    public let model: LanguageModel
    /// The optimizer and its state.
    public let optimizer: AdamW
    /// The gradient of the current step, in the bound layout.
    let gradients: BoundModel
    private let gradientBuffers: [FloatBuffer]
    /// Gradients of the windows the other threads take (slot 0 is `gradients`), made on first use.
    private var slots: [(model: BoundModel, buffers: [FloatBuffer])] = []

    /// Windows of at least this many tokens are computed one at a time, each on all threads.
    static let longWindow = 256

    /// What one step did.
    public struct StepReport: Sendable, Codable, Hashable {
        /// The mean NLL of the step's windows before the update (nats per token).
        public var loss: Double
        /// The global gradient norm before clipping.
        public var gradientNorm: Double
        /// The learning rate applied.
        public var learningRate: Double
    }

    /// - Throws: `.cannotTrain` naming the first layer kind without a backward pass, or weights not held in fp32.
    public init(model: LanguageModel, settings: OptimizerSettings) throws(TrainingError) {
        try Gradients.check(model)
        guard let gradients = model.bound.zeroedCopy() else {
            throw .cannotTrain(
                layer: "the weights", reason: "matrices held in 16 bits; load with weights: .float32 to train")
        }
        self.model = model
        self.gradients = gradients
        let parameters = model.bound.parameterBuffers
        gradientBuffers = gradients.parameterBuffers.map(\.buffer)
        precondition(gradientBuffers.count == parameters.count, "a gradient model of another structure")
        optimizer = AdamW(parameters: parameters, settings: settings)
    }

    /// One optimizer step on the mean NLL over `windows` (each `L + 1` tokens: the first `L` predict the next;
    /// every window the same length, so the mean over windows is the mean over tokens).
    public func step(windows: [[Int32]], learningRate: Double) throws(TrainingError) -> StepReport {
        guard !windows.isEmpty else { throw .tooFewTokens(count: 0) }
        for window in windows {
            guard window.count >= 2 else { throw .tooFewTokens(count: window.count) }
            try Gradients.validate(model, inputs: Array(window.dropLast()), targets: Array(window.dropFirst()))
        }
        let loss = try accumulate(windows)
        // A NaN or infinite loss or gradient stops before the update: the weights stay those of the last good step.
        let norm = AdamW.globalNorm(gradientBuffers)
        guard loss.isFinite, norm.isFinite else { throw .nonFinite(step: optimizer.step + 1, loss: loss) }
        optimizer.update(gradients: gradientBuffers, learningRate: learningRate, norm: norm)
        return StepReport(loss: loss, gradientNorm: norm, learningRate: learningRate)
    }
}

extension Trainer {
    /// The mean NLL of `windows` and its gradient into `gradients`. With several threads the windows are dealt to
    /// them by index (window i to slot i mod slots), each slot's gradients summed in its own copy and the copies added
    /// in slot order: the same bits for the same thread count, whichever thread runs which slot.
    private func accumulate(_ windows: [[Int32]]) throws(TrainingError) -> Double {
        let weight = 1 / Double(windows.count)
        // Short windows (the probe's 64 rows) make products too small to split: the threads take whole windows,
        // each with a gradient copy of its own. Long windows split every product instead, with one gradient and the
        // memory of one.
        let count =
            windows.first.map { $0.count - 1 >= Self.longWindow } == true ? 1 : min(Kernels.threads, windows.count)
        while slots.count < count {
            if slots.isEmpty {
                slots.append((gradients, gradientBuffers))
            } else if let copy = model.bound.zeroedCopy() {
                slots.append((copy, copy.parameterBuffers.map(\.buffer)))
            }
        }
        let losses = UnsafeMutablePointer<Double>.allocate(capacity: count)
        losses.initialize(repeating: 0, count: count)
        defer { losses.deallocate() }
        let failures = UnsafeMutablePointer<TrainingError?>.allocate(capacity: count)
        failures.initialize(repeating: nil, count: count)
        defer {
            failures.deinitialize(count: count)
            failures.deallocate()
        }
        let bound = model.bound
        let (lossSlots, failureSlots) = (UncheckedPointer(losses), UncheckedPointer(failures))
        let work = UncheckedArray(Array(slots.prefix(count)))
        Kernels.parallelFor(count) { slot in
            for buffer in work.values[slot].buffers { buffer.pointer.update(repeating: 0, count: buffer.count) }
            for index in stride(from: slot, to: windows.count, by: count) {
                let window = windows[index]
                do {
                    lossSlots.pointer[slot] +=
                        weight
                        * (try Gradients.accumulate(
                            bound, inputs: Array(window.dropLast()), targets: Array(window.dropFirst()),
                            into: work.values[slot].model, weight: weight))
                } catch let error as TrainingError {
                    failureSlots.pointer[slot] = error
                    return
                } catch {
                    return  // accumulate throws TrainingError only
                }
            }
        }
        if let failure = (0..<count).lazy.compactMap({ failures[$0] }).first { throw failure }
        if count > 1 {
            let sum = UncheckedArray(slots.prefix(count).map(\.buffers))
            Kernels.parallelFor(gradientBuffers.count) { index in
                let target = sum.values[0][index]
                for slot in 1..<count {
                    let source = sum.values[slot][index]
                    for i in 0..<target.count { target.pointer[i] += source.pointer[i] }
                }
            }
        }
        return (0..<count).reduce(0) { $0 + losses[$1] }
    }

    /// Applies gradients already computed (in the bound layout, `boundGradients`): clipping, then one AdamW step.
    @discardableResult
    package func apply(_ gradients: BoundModel, learningRate: Double) -> Double {
        optimizer.update(gradients: gradients.parameterBuffers.map(\.buffer), learningRate: learningRate)
    }

    /// The current weights as the checkpoint names and stores them.
    package func namedWeights() -> [String: [Float]] {
        var result: [String: [Float]] = [:]
        for tensor in model.bound.namedTensors(of: model.architecture, weights: true) {
            result[tensor.name] = tensor.values.array
        }
        return result
    }
}

/// Gradients stored as a checkpoint stores weights (`extrapolate gradients`' file, torch's), bound the way `model`'s
/// weights are: tied, fused and transposed tensors in the same places.
package func boundGradients(of model: LanguageModel, from file: Checkpoint) throws(TrainingError) -> BoundModel {
    do {
        return try LanguageModel(architecture: model.architecture, checkpoint: file, weights: .float32).bound
    } catch { throw .engine(error) }
}
