import Architecture
import Checkpoints
import Engine
import Foundation
import Kernels

/// Why a model cannot be trained (or differentiated): said before any step runs.
public enum TrainingError: Error, Sendable, CustomStringConvertible {
    /// The checkpoint could not be loaded or bound.
    case engine(EngineError)
    /// A file could not be read or written.
    case checkpoint(CheckpointError)
    /// A layer kind or option the backward pass does not cover, by its place in the architecture.
    case cannotTrain(layer: String, reason: String)
    /// A token outside the embedding's vocabulary.
    case tokenOutOfRange(index: Int, token: Int, vocabulary: Int)
    /// Fewer than two tokens, or targets longer than the inputs.
    case tooFewTokens(count: Int)
    /// A length the model is not defined at (a learned position table's end, …).
    case unsupportedLength(length: Int, reason: String)
    /// A kernel's scratch could not be allocated.
    case outOfMemory(String)
    /// The loss or a gradient was NaN or infinite at this step (the update was not applied).
    case nonFinite(step: Int, loss: Double, saved: String? = nil)
    /// The run folder, data or settings cannot be used (the message says which and what to do).
    case refused(String)

    public var description: String {
        switch self {
        case .engine(let error): error.description
        case .checkpoint(let error): error.description
        case .cannotTrain(let layer, let reason): "\(layer) cannot be trained: \(reason)"
        case .tokenOutOfRange(let index, let token, let vocabulary):
            "token \(token) at position \(index) is outside the model's vocabulary of \(vocabulary); "
                + "the data was tokenized for another model"
        case .tooFewTokens(let count): "need at least 2 tokens to compute a loss, got \(count)"
        case .unsupportedLength(let length, let reason): "cannot train at \(length) tokens: \(reason)"
        case .outOfMemory(let what): what
        case .nonFinite(let step, let loss, let saved):
            "the loss was \(loss.isNaN ? "NaN" : "\(loss)") or a gradient not finite at step \(step); the update was not "
                + "applied" + (saved.map { "; the last good weights (step \(step - 1)) are in \($0)" } ?? "")
                + ". Lower --learning-rate or raise --warmup"
        case .refused(let message): message
        }
    }
}

/// The gradient of the mean negative log-likelihood with respect to every parameter, computed exactly (fp32, the
/// engine's kernels forward, a hand-written backward pass; `Docs/training.md`).
///
/// ```swift
/// let model = try LanguageModel.load("runs/alibi/step-2000.safetensors", weights: .float32)
/// let result = try Gradients.compute(model, tokens: window)        // window: L + 1 tokens
/// for tensor in result.tensors { print(tensor.name, tensor.shape) }
/// ```
public struct Gradients: @unchecked Sendable {
    /// The mean negative log-likelihood of the targets (nats per token).
    public var loss: Double
    /// Targets scored.
    public var tokens: Int
    /// The gradients in the bound layout (the shape of the model's weights).
    package var bound: BoundModel

    /// Every parameter's gradient as the architecture names it (`rename`: the checkpoint's spelling), in its stored
    /// shape and layout.
    package func named(_ architecture: Architecture, rename: (String) -> String = { $0 }) -> [NamedTensor] {
        bound.namedTensors(of: architecture, rename: rename)
    }

    /// `d(mean NLL)/d(parameter)` of one window: `tokens[0..<L]` predict `tokens[1...L]`, as evaluation scores.
    public static func compute(_ model: LanguageModel, tokens: [Int32]) throws(TrainingError) -> Gradients {
        guard tokens.count >= 2 else { throw .tooFewTokens(count: tokens.count) }
        return try compute(model, inputs: Array(tokens.dropLast()), targets: Array(tokens.dropFirst()))
    }

    /// `d(mean NLL)/d(parameter)` of `targets[t]` following `inputs[0…t]`.
    public static func compute(_ model: LanguageModel, inputs: [Int32], targets: [Int32]) throws(TrainingError)
        -> Gradients
    {
        try check(model)
        try validate(model, inputs: inputs, targets: targets)
        guard let grads = model.bound.zeroedCopy() else {
            throw .cannotTrain(
                layer: "the weights", reason: "matrices held in 16 bits; load with weights: .float32 to train")
        }
        let loss = try accumulate(model.bound, inputs: inputs, targets: targets, into: grads, weight: 1)
        return Gradients(loss: loss, tokens: targets.count, bound: grads)
    }

    /// Refuses a window the model cannot be differentiated on: too short, past its length, outside its vocabulary.
    static func validate(_ model: LanguageModel, inputs: [Int32], targets: [Int32]) throws(TrainingError) {
        guard !inputs.isEmpty, !targets.isEmpty, targets.count <= inputs.count else {
            throw .tooFewTokens(count: min(inputs.count, targets.count))
        }
        if case .unsupported(let reason) = model.support(at: inputs.count) {
            throw .unsupportedLength(length: inputs.count, reason: reason)
        }
        for (index, token) in (inputs + targets).enumerated() where token < 0 || Int(token) >= model.vocabulary {
            throw .tokenOutOfRange(
                index: index < inputs.count ? index : index - inputs.count + 1, token: Int(token),
                vocabulary: model.vocabulary)
        }
    }

    /// Adds `weight · d(mean NLL)/d(parameter)` of one window into `grads` (checked inputs); returns the mean NLL.
    static func accumulate(
        _ bound: BoundModel, inputs: [Int32], targets: [Int32], into grads: BoundModel, weight: Double
    ) throws(TrainingError) -> Double {
        var tape = Tape(tokens: inputs)
        let x = tape.embed(bound.embedding)
        let hidden: Act
        let records: [Record]
        do { (hidden, records) = try tape.apply(bound.body, to: x) } catch { throw .outOfMemory(error.description) }
        var backward = Backward(length: inputs.count, tape: tape)
        let (loss, dHidden) = backward.head(
            hidden, bound.head, grads.head, softcap: bound.headSoftcap, targets: targets, weight: weight)
        let dx = backward.backward(bound.body, grads.body, records, dHidden)
        backward.embedding(bound.embedding, grads.embedding, tokens: inputs, dx)
        return loss
    }

    /// Refuses, before any work, a model the backward pass cannot train, naming the tensor: every layer kind the
    /// engine evaluates has a backward pass, but a stored matrix shared by several layers and bound apart
    /// (transposed once for each) would become two tensors under training.
    public static func check(_ model: LanguageModel) throws(TrainingError) {
        if let name = model.bound.tensorsBoundApart(of: model.architecture).first {
            throw .cannotTrain(
                layer: name,
                reason: "it is shared by several layers in the [in, out] layout, which the engine binds as separate "
                    + "copies; store it [out, in] (layout outIn) to train")
        }
    }
}

extension Backward {
    /// The head and the loss: logits in row chunks (never `[T, V]`), `weight · (softmax − one-hot)` over the count
    /// of targets. Returns the mean NLL and `d/d hidden`.
    mutating func head(
        _ x: Act, _ head: Projection, _ grad: Projection, softcap: Float?, targets: [Int32], weight: Double = 1
    ) -> (Double, Act) {
        guard case .float(let matrix) = head.weight, case .float(let dWeight) = grad.weight else {
            preconditionFailure("training binds fp32 weights")
        }
        let (V, C, n) = (head.output, head.input, targets.count)
        let dx = FloatBuffer(count: length * x.width)
        // Chunks of up to 2^25 logits (128 MB; 667 rows of GPT-2's 50,257): the weight gradient is a product over
        // the chunk's rows, and at the evaluation's 83 rows it ran a third slower and wrote all of dW 25 times a step.
        let chunk = max(1, min(n, 1024, (1 << 25) / max(V, 1)))
        let logits = FloatBuffer(uninitialized: chunk * V),
            capped = FloatBuffer(uninitialized: softcap == nil ? 1 : chunk * V)
        var loss = 0.0
        let scale = weight / Double(n)
        for begin in stride(from: 0, to: n, by: chunk) {
            let rows = min(chunk, n - begin)
            let input = x.buffer.pointer + begin * x.width
            Kernels.gemm(
                input, lda: x.width, transposeA: false, matrix.pointer, ldb: C, transposeB: true, logits.pointer,
                ldc: V, m: rows, n: V, k: C)
            // Each row's log-sum-exp and `weight · (softmax − one-hot) / n`, the rows split between the threads.
            let rowLosses = UnsafeMutablePointer<Double>.allocate(capacity: rows)
            defer { rowLosses.deallocate() }
            let (l, c, out) = (
                UncheckedPointer(logits.pointer), UncheckedPointer(capped.pointer), UncheckedPointer(rowLosses)
            )
            let bias = head.bias.map { UncheckedPointer($0.pointer) }
            Kernels.parallelFor(rows) { r in
                let row = l.pointer + r * V
                if let bias { for c in 0..<V { row[c] += bias.pointer[c] } }
                if let softcap {
                    for column in 0..<V {
                        let t = tanh(row[column] / softcap)
                        c.pointer[r * V + column] = t
                        row[column] = softcap * t
                    }
                }
                let maximum = Kernels.maximum(row, count: V)
                let target = Int(targets[begin + r])
                let targetLogit = row[target]
                for column in 0..<V { row[column] -= maximum }
                Kernels.exp(row, into: row, count: V)  // e^(z − max), vectorised
                let sum = Kernels.sum(row, count: V)
                out.pointer[r] = Double(maximum) + Foundation.log(sum) - Double(targetLogit)
                let factor = Float(scale / sum)
                for column in 0..<V { row[column] *= factor }
                row[target] -= Float(scale)
                if softcap != nil {
                    for column in 0..<V {
                        let t = c.pointer[r * V + column]
                        row[column] *= 1 - t * t
                    }
                }
            }
            for r in 0..<rows { loss += rowLosses[r] }
            // dx = dlogits·W, dW += dlogitsᵀ·x, db += Σ dlogits
            Kernels.gemm(
                logits.pointer, lda: V, transposeA: false, matrix.pointer, ldb: C, transposeB: false,
                dx.pointer + begin * x.width, ldc: x.width, m: rows, n: C, k: V)
            Kernels.gemm(
                logits.pointer, lda: V, transposeA: true, input, ldb: x.width, transposeB: false, dWeight.pointer,
                ldc: C, m: V, n: C, k: rows, accumulate: true)
            if let db = grad.bias { Self.addColumnSums(logits.pointer, rows: rows, width: V, into: db.pointer) }
        }
        withExtendedLifetime((logits, capped)) {}  // read through raw pointers inside the parallel loop
        return (loss / Double(n), Act(buffer: dx, width: x.width))
    }

    /// The token embedding: `d table[token_t] += scale · dx[t]`.
    func embedding(_ e: EmbeddingWeights, _ grad: EmbeddingWeights, tokens: [Int32], _ dx: Act) {
        guard case .float(let dTable) = grad.table else { return }
        let scale = e.scale ?? 1
        for (t, token) in tokens.enumerated() {
            let row = dTable.pointer + Int(token) * e.width, d = dx.buffer.pointer + t * e.width
            for c in 0..<e.width { row[c] += scale * d[c] }
        }
    }
}

extension Gradients {
    /// What `write(checkpoint:…)` wrote.
    public struct Summary: Sendable, Codable {
        /// The mean NLL of the window (nats per token).
        public var loss: Double
        /// Targets scored.
        public var tokens: Int
        /// Tensors written.
        public var tensors: Int
        /// The global L2 norm of all gradients.
        public var norm: Double
        /// Where they were written.
        public var path: String
    }

    /// Loads `checkpoint` (fp32), differentiates the mean NLL of `tokens` (`L + 1` tokens: `L` predict the next) and
    /// writes every parameter's gradient to `path` as safetensors, named and shaped as the checkpoint stores them.
    public static func write(
        checkpoint: String, architectureFile: String? = nil, tokens: [Int32], to path: String
    ) throws(TrainingError) -> Summary {
        let model: LanguageModel
        do {
            model = try LanguageModel.load(
                checkpoint, architectureFile: architectureFile, weights: .float32, precision: .float32)
        } catch { throw .engine(error) }
        let gradients = try compute(model, tokens: tokens)
        let stored: Checkpoint
        do { stored = try model.location.open() } catch { throw .checkpoint(error) }
        let named = gradients.named(model.architecture) { storedTensorName($0, in: stored) ?? $0 }
        var norm = 0.0
        for tensor in named {
            for i in 0..<tensor.values.count {
                norm += Double(tensor.values.pointer[i]) * Double(tensor.values.pointer[i])
            }
        }
        let metadata = [
            "loss": "\(gradients.loss)", "length": "\(tokens.count - 1)", "checkpoint": checkpoint,
            "source": "extrapolate gradients: d(mean NLL)/d(parameter)",
        ]
        do {
            try SafetensorsWriter.write(
                named.map { tensor in
                    SafetensorsWriter.Tensor(
                        name: tensor.name, shape: tensor.shape,
                        values: UnsafeBufferPointer(start: tensor.values.pointer, count: tensor.values.count))
                }, metadata: metadata, to: path)
        } catch { throw .checkpoint(error) }
        withExtendedLifetime(named) {}
        return Summary(
            loss: gradients.loss, tokens: gradients.tokens, tensors: named.count, norm: norm.squareRoot(), path: path)
    }
}
