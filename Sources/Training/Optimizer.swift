import Engine
import Foundation
import Kernels

/// How a model is optimised: AdamW as `torch.optim.AdamW` computes it, linear warm-up then cosine decay (the demo's
/// `train.py`, nanoGPT), clipping by global norm, accumulation. The defaults are the paper's probe settings as
/// `Datasets/demo/train.py` runs them.
public struct OptimizerSettings: Sendable, Hashable, Codable {
    /// Peak learning rate.
    public var learningRate: Double = 2e-3
    /// The learning rate the cosine decays to at the last step (`train.py`: 0).
    public var minimumLearningRate: Double = 0
    /// Steps of linear warm-up (`lr · step / warmup` while it is below the cosine).
    public var warmup: Int = 100
    /// Decoupled weight decay, on matrices only (parameters of two or more dimensions).
    public var weightDecay: Double = 0.1
    public var beta1: Double = 0.9
    public var beta2: Double = 0.95
    public var epsilon: Double = 1e-8
    /// The largest global gradient norm (`clip_grad_norm_`), or `nil` for none.
    public var clip: Double? = 1.0

    public init() {}

    /// The learning rate of step `step` (1-based) of `steps`: `train.py`'s
    /// `lr · min(step / warmup, ½(1 + cos(π · step / steps)))`, on `[minimum, lr]`.
    public func learningRate(step: Int, of steps: Int) -> Double {
        let ramp = warmup > 0 ? Double(step) / Double(warmup) : 1
        let cosine = 0.5 * (1 + cos(Double.pi * Double(min(step, steps)) / Double(max(steps, 1))))
        return minimumLearningRate + (learningRate - minimumLearningRate) * min(ramp, cosine)
    }
}

/// AdamW's state for one model: first and second moments per parameter buffer, and the step count.
public final class AdamW: @unchecked Sendable {
    public let settings: OptimizerSettings
    /// Steps taken.
    public private(set) var step = 0
    let parameters: [(buffer: FloatBuffer, isMatrix: Bool)]
    let first: [FloatBuffer]
    let second: [FloatBuffer]

    init(parameters: [(buffer: FloatBuffer, isMatrix: Bool)], settings: OptimizerSettings) {
        self.parameters = parameters
        self.settings = settings
        first = parameters.map { FloatBuffer(count: $0.buffer.count) }
        second = parameters.map { FloatBuffer(count: $0.buffer.count) }
    }

    /// The moments, in `parameters`' order (what `--resume` saves and restores).
    var moments: [(first: FloatBuffer, second: FloatBuffer)] { Array(zip(first, second)) }

    /// Continues from a saved state: the moments are restored by the caller, this sets the step count.
    func restore(step: Int) { self.step = step }

    /// Fixed pieces of at most 2^16 values of `buffers` (buffer index, first value, end): what the norm and the
    /// update split between the threads. Summed per piece and added in order, the norm has the same bits whatever
    /// the thread count; and no thread is left alone with the embedding while the others wait.
    static func pieces(_ buffers: [FloatBuffer]) -> [(buffer: Int, start: Int, end: Int)] {
        let piece = 1 << 16
        var pieces: [(buffer: Int, start: Int, end: Int)] = []
        for (index, buffer) in buffers.enumerated() {
            for start in stride(from: 0, to: buffer.count, by: piece) {
                pieces.append((index, start, min(start + piece, buffer.count)))
            }
        }
        return pieces
    }

    /// The global L2 norm of `gradients` (one buffer per parameter, in `parameters`' order), in fp32 per tensor as
    /// `clip_grad_norm_` computes it.
    static func globalNorm(_ gradients: [FloatBuffer]) -> Double {
        let pieces = Self.pieces(gradients)
        let sums = UnsafeMutablePointer<Double>.allocate(capacity: max(pieces.count, 1))
        defer { sums.deallocate() }
        let (out, work) = (UncheckedPointer(sums), UncheckedArray(pieces))
        let buffers = UncheckedArray(gradients.map { UncheckedPointer($0.pointer) })
        Kernels.parallelFor(pieces.count) { index in
            let (buffer, start, end) = work.values[index]
            let g = buffers.values[buffer].pointer
            var sum: Double = 0
            for i in start..<end { sum += Double(g[i]) * Double(g[i]) }
            out.pointer[index] = sum
        }
        var total: Double = 0
        for index in 0..<pieces.count { total += sums[index] }
        withExtendedLifetime(gradients) {}
        return total.squareRoot()
    }

    /// Takes one AdamW step at learning rate `lr` on `gradients` clipped to the settings' norm (`clip_grad_norm_`:
    /// `× min(1, clip / (norm + 1e-6))`, in fp32), in one pass over each value; `gradients` are read, not changed.
    /// Returns the norm before clipping.
    @discardableResult
    func update(gradients: [FloatBuffer], learningRate lr: Double, norm known: Double? = nil) -> Double {
        precondition(gradients.count == parameters.count, "gradients of another model")
        let norm = known ?? Self.globalNorm(gradients)
        let clip = settings.clip.map { Float(min(1, $0 / (norm + 1e-6))) } ?? 1
        step += 1
        // torch.optim.AdamW (single-tensor, fp32): p ← p·(1 − lr·λ); m ← β1·m + (1 − β1)·g; v ← β2·v + (1 − β2)·g²;
        // p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε).
        let (b1, b2) = (Float(settings.beta1), Float(settings.beta2))
        let correction1 = 1 - pow(settings.beta1, Double(step))
        let c2 = Float((1 - pow(settings.beta2, Double(step))).squareRoot())
        let stepSize = Float(lr / correction1)
        let epsilon = Float(settings.epsilon)
        let matrixDecay = 1 - Float(lr) * Float(settings.weightDecay)
        let work = UncheckedArray(Self.pieces(gradients))
        let buffers = UncheckedArray(
            parameters.indices.map {
                (
                    p: UncheckedPointer(parameters[$0].buffer.pointer), g: UncheckedPointer(gradients[$0].pointer),
                    m: UncheckedPointer(first[$0].pointer), v: UncheckedPointer(second[$0].pointer),
                    decay: parameters[$0].isMatrix ? matrixDecay : Float(1)
                )
            })
        Kernels.parallelFor(work.values.count) { index in
            let (buffer, start, end) = work.values[index]
            let b = buffers.values[buffer]
            let (p, g, m, v, decay) = (b.p.pointer, b.g.pointer, b.m.pointer, b.v.pointer, b.decay)
            for i in start..<end {
                let gradient = g[i] * clip
                p[i] *= decay
                m[i] += (1 - b1) * (gradient - m[i])  // torch's lerp_(g, 1 − β1)
                v[i] = v[i] * b2 + (1 - b2) * gradient * gradient
                p[i] -= stepSize * m[i] / (v[i].squareRoot() / c2 + epsilon)
            }
        }
        withExtendedLifetime((parameters, gradients, first, second)) {}
        return norm
    }
}

/// An array handed to a parallel loop that only reads it.
struct UncheckedArray<T>: @unchecked Sendable {
    var values: [T]
    init(_ values: [T]) { self.values = values }
}
