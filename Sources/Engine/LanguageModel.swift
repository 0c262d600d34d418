import Architecture
import Checkpoints
import Foundation
import Kernels

/// A checkpoint bound to its architecture, ready to score token sequences on the CPU.
///
/// ```swift
/// let model = try LanguageModel.load("runs/alibi/checkpoint-2000")
/// let logprobs = try model.logProbabilities(tokens)   // tokens.count − 1 values
/// ```
public final class LanguageModel: @unchecked Sendable {
    /// The architecture the weights were bound to.
    public let architecture: Architecture
    /// Where the weights came from.
    public let location: CheckpointLocation
    /// Vocabulary size.
    public let vocabulary: Int
    /// Parameters bound (tied and shared tensors once).
    public let parameterCount: Int
    let steps: [Step]

    /// Rows of the feed-forward hidden activations computed at once (bounds memory; results do not depend on it).
    public var feedForwardChunk = 4096
    /// Rows of logits computed at once per thread: memory is `threads × logitsChunk × vocabularySlice` floats,
    /// never `length × vocabulary`.
    public var logitsChunk = 512
    /// Vocabulary columns of logits computed at once (the log-softmax folds slices, so memory does not grow with
    /// the vocabulary).
    public var vocabularySlice = 32768

    /// Finds, reads and binds the checkpoint at `path` (a folder, a `.safetensors` file or an index).
    /// - Throws: `EngineError` naming the file and every mismatch.
    public static func load(_ path: String) throws(EngineError) -> LanguageModel {
        let location: CheckpointLocation
        let checkpoint: Checkpoint
        do {
            location = try CheckpointLocation.discover(path)
            checkpoint = try location.open()
        } catch { throw .checkpoint(error) }
        let (architecture, ignored) = try architecture(for: location, checkpoint: checkpoint)
        return try LanguageModel(architecture: architecture, checkpoint: checkpoint, location: location, ignoring: ignored)
    }

    /// The architecture of a checkpoint: its embedded architecture JSON, else the `config.json` beside it.
    /// Also returns the tensor-name suffixes the family stores as buffers (never weights).
    public static func architecture(
        for location: CheckpointLocation, checkpoint: Checkpoint
    ) throws(EngineError) -> (Architecture, ignoredSuffixes: [String]) {
        do {
            if let json = checkpoint.metadata[CheckpointLocation.architectureMetadataKey] {
                let path = "\(location.weightsPath) (metadata '\(CheckpointLocation.architectureMetadataKey)')"
                let architecture = try Architecture.decode(json: Data(json.utf8), path: path)
                try architecture.validate(readFrom: path)
                return (architecture, [])
            }
            if let config = location.config {
                let url = URL(fileURLWithPath: config)
                let architecture = try HuggingFace.architecture(configAt: url)
                let modelType = (try? HuggingFace.modelType(configAt: url)) ?? ""
                return (architecture, HuggingFace.bufferSuffixes[modelType] ?? [])
            }
        } catch { throw .architecture(error) }
        throw .noArchitecture(path: location.weightsPath)
    }

    /// Binds `checkpoint` to `architecture`.
    /// - Parameter ignoring: tensor-name suffixes that are buffers, not weights (`.attn.masked_bias`, …).
    public init(
        architecture: Architecture, checkpoint: Checkpoint, location: CheckpointLocation? = nil, ignoring: [String] = []
    ) throws(EngineError) {
        do { try architecture.validate(readFrom: checkpoint.path) } catch { throw .architecture(error) }
        self.architecture = architecture
        self.location = location ?? CheckpointLocation(weights: .file(checkpoint.path), config: nil)
        steps = try Binder.bind(architecture, checkpoint: checkpoint, ignoredSuffixes: ignoring)
        let manifest = architecture.manifest
        parameterCount = manifest.parameterCount
        vocabulary = architecture.resolvedLayers.lazy.compactMap { layer -> Int? in
            if case .leaf(let leaf) = layer, case .tokenEmbedding(let node) = leaf.layer { return node.vocabulary }
            return nil
        }.first ?? 0
    }

    /// Whether the model is defined for windows of `length` tokens.
    public func support(at length: Int) -> Support { architecture.support(at: length) }

    /// The log-probability of every token after the first, given the tokens before it (one causal pass).
    /// - Returns: `tokens.count − 1` values; value `t` is `log p(tokens[t+1] | tokens[0…t])`.
    /// - Throws: for unsupported lengths and out-of-vocabulary tokens.
    public func logProbabilities(_ tokens: [Int32]) throws(EngineError) -> [Double] {
        guard tokens.count >= 2 else { throw .tooFewTokens(count: tokens.count) }
        return try score(inputs: tokens, targets: Array(tokens.dropFirst()))
    }

    /// One causal pass over `inputs` (positions `0…inputs.count−1`) scoring `targets[t]` as the token after `inputs[t]`.
    ///
    /// This is the evaluation protocols' window: `L` input tokens predict the `L` tokens that follow them, and the
    /// model runs at length `L` exactly (not `L + 1`), which matters for learned tables and length-dependent
    /// rotary extensions. `targets` may be shorter than `inputs` (the last positions are then not scored).
    public func logProbabilities(inputs: [Int32], targets: [Int32]) throws(EngineError) -> [Double] {
        guard !inputs.isEmpty, !targets.isEmpty, targets.count <= inputs.count else {
            throw .tooFewTokens(count: min(inputs.count, targets.count))
        }
        return try score(inputs: inputs, targets: targets)
    }

    private func score(inputs: [Int32], targets: [Int32]) throws(EngineError) -> [Double] {
        let length = inputs.count
        if case .unsupported(let reason) = support(at: length) { throw .unsupportedLength(length: length, reason: reason) }
        for (index, token) in (inputs + targets).enumerated() where token < 0 || Int(token) >= vocabulary {
            throw .tokenOutOfRange(index: index < length ? index : index - length + 1, token: Int(token), vocabulary: vocabulary)
        }
        var run = Forward(tokens: inputs, feedForwardChunk: max(feedForwardChunk, 1), logitsChunk: max(logitsChunk, 1),
                          vocabularySlice: max(vocabularySlice, 1))
        let hidden = run.apply(steps[...], to: nil)
        guard case .unembed(let head)? = steps.last else {
            throw .unsupported(location: "layers", reason: "the last layer must be an unembedding")
        }
        return run.scores(hidden, head: head, targets: targets)
    }

    /// The same weights with every rotary layer's inference-time extension replaced (for sweeps that compare
    /// linear, NTK, dynamic, YaRN and llama3 scaling). `nil` when the model has no rotary layer.
    public func replacingRotaryScaling(_ scaling: (Rotary) -> RotaryScaling) -> LanguageModel? {
        var found = false
        func map(_ steps: [Step]) -> [Step] {
            steps.map { step in
                switch step {
                case .attention(var weights):
                    if case .rotary(var rotary) = weights.node.position {
                        rotary.scaling = scaling(rotary)
                        weights.node.position = .rotary(rotary)
                        found = true
                    }
                    return .attention(weights)
                case .residual(let placement, let body): return .residual(placement, map(body))
                case .parallel(let branches): return .parallel(branches.map(map))
                default: return step
                }
            }
        }
        let mapped = map(steps)
        guard found else { return nil }
        var architecture = self.architecture
        architecture.layers = Self.mapRotary(architecture.layers, scaling)
        return LanguageModel(architecture: architecture, location: location, vocabulary: vocabulary,
                             parameterCount: parameterCount, steps: mapped)
    }

    private init(architecture: Architecture, location: CheckpointLocation, vocabulary: Int, parameterCount: Int, steps: [Step]) {
        self.architecture = architecture
        self.location = location
        self.vocabulary = vocabulary
        self.parameterCount = parameterCount
        self.steps = steps
    }

    private static func mapRotary(_ layers: [Layer], _ scaling: (Rotary) -> RotaryScaling) -> [Layer] {
        layers.map { layer in
            switch layer {
            case .attention(var node):
                if case .rotary(var rotary) = node.position { rotary.scaling = scaling(rotary); node.position = .rotary(rotary) }
                return .attention(node)
            case .repeated(var node): node.body = mapRotary(node.body, scaling); return .repeated(node)
            case .residual(var node): node.body = mapRotary(node.body, scaling); return .residual(node)
            case .parallelResidual(var node): node.branches = node.branches.map { mapRotary($0, scaling) }; return .parallelResidual(node)
            default: return layer
            }
        }
    }
}

/// Activations `[length, width]`.
struct Activations {
    var buffer: FloatBuffer
    var width: Int
}

/// One forward pass over a window of tokens.
struct Forward {
    let tokens: [Int32]
    let feedForwardChunk: Int
    let logitsChunk: Int
    let vocabularySlice: Int
    var length: Int { tokens.count }
    private var rotations: [AttentionPosition: RotationTables] = [:]

    init(tokens: [Int32], feedForwardChunk: Int, logitsChunk: Int, vocabularySlice: Int) {
        self.tokens = tokens
        self.feedForwardChunk = feedForwardChunk
        self.logitsChunk = logitsChunk
        self.vocabularySlice = vocabularySlice
    }

    /// Applies `steps` to `x` (`nil` before the embedding); the unembedding is left to `scores`.
    mutating func apply(_ steps: ArraySlice<Step>, to input: Activations?) -> Activations {
        var x = input
        for step in steps {
            switch step {
            case .unembed:
                continue
            case .residual(let placement, let body):
                guard let current = x else { continue }
                x = residual(placement, body, current)
            case .parallel(let branches):
                guard let current = x else { continue }
                // Every branch reads the same input; their outputs are summed onto it afterwards.
                let outputs = branches.map { apply($0[...], to: copy(current)) }
                for out in outputs { Kernels.add(current.buffer.pointer, out.buffer.pointer, count: length * current.width) }
            default:
                x = leaf(step, x)
            }
        }
        return x ?? Activations(buffer: FloatBuffer(count: 0), width: 0)
    }

    private mutating func residual(_ placement: NormPlacement, _ body: [Step], _ x: Activations) -> Activations {
        switch placement {
        case .pre:
            let out = apply(body[...], to: copy(x))
            Kernels.add(x.buffer.pointer, out.buffer.pointer, count: length * x.width)
            return x
        case .post:
            let out = apply(body.dropLast(), to: copy(x))
            Kernels.add(x.buffer.pointer, out.buffer.pointer, count: length * x.width)
            guard let norm = body.last else { return x }
            return leaf(norm, x) ?? x
        }
    }

    private func copy(_ x: Activations) -> Activations {
        let buffer = FloatBuffer(uninitialized: length * x.width)
        let (source, destination) = (UncheckedPointer(x.buffer.pointer), UncheckedPointer(buffer.pointer))
        Kernels.parallelRows(length, minimumChunk: 256) { begin, end in
            (destination.pointer + begin * x.width).initialize(from: source.pointer + begin * x.width,
                                                               count: (end - begin) * x.width)
        }
        return Activations(buffer: buffer, width: x.width)
    }

    private mutating func leaf(_ step: Step, _ input: Activations?) -> Activations? {
        switch step {
        case .embed(let table, _, let width, let scale):
            let out = FloatBuffer(uninitialized: length * width)
            let (rows, destination) = (UncheckedPointer(table.pointer), UncheckedPointer(out.pointer))
            tokens.withUnsafeBufferPointer { tokens in
                Kernels.parallelRows(length, minimumChunk: 256) { begin, end in
                    for t in begin..<end {
                        let row = destination.pointer + t * width
                        row.initialize(from: rows.pointer + Int(tokens[t]) * width, count: width)
                        if let scale { for c in 0..<width { row[c] *= scale } }
                    }
                }
            }
            return Activations(buffer: out, width: width)
        case .positions(let encoding, let table, let width):
            guard let x = input else { return input }
            addPositions(encoding, table: table, width: width, to: x)
            return x
        case .linear(let projection):
            guard let x = input else { return input }
            return project(x, projection)
        case .layerNorm(let gamma, let beta, let epsilon, let width):
            guard let x = input else { return input }
            Kernels.layerNorm(x.buffer.pointer, rows: length, width: width, stride: x.width,
                              gamma: gamma.map { UnsafePointer($0.pointer) }, beta: beta.map { UnsafePointer($0.pointer) },
                              epsilon: epsilon)
            return x
        case .rmsNorm(let gamma, let epsilon, let width):
            guard let x = input else { return input }
            Kernels.rmsNorm(x.buffer.pointer, rows: length, width: width, stride: x.width, gamma: gamma.pointer, epsilon: epsilon)
            return x
        case .attention(let weights):
            guard let x = input else { return input }
            return attention(x, weights)
        case .feedForward(let weights):
            guard let x = input else { return input }
            return feedForward(x, weights)
        case .unembed, .residual, .parallel:
            return input
        }
    }

    private func addPositions(_ encoding: InputPositionEncoding, table: FloatBuffer?, width: Int, to x: Activations) {
        switch encoding {
        case .learned(_, let offset):
            guard let table else { return }
            Kernels.add(x.buffer.pointer, table.pointer + offset * width, count: length * width)
        case .sinusoidal(let layout, let offset):
            let pointer = UncheckedPointer(x.buffer.pointer)
            Kernels.parallelRows(length, minimumChunk: 256) { begin, end in
                for t in begin..<end {
                    let vector = layout.embedding(position: t + offset, width: width)
                    for c in 0..<width { pointer.pointer[t * width + c] += Float(vector[c]) }
                }
            }
        }
    }

    /// `x · Wᵀ + b` for all rows (rows split between the threads, the bias added by the thread that wrote them).
    private func project(_ x: Activations, _ p: Projection) -> Activations {
        let out = FloatBuffer(uninitialized: length * p.output)
        let (input, output) = (UncheckedPointer(x.buffer.pointer), UncheckedPointer(out.pointer))
        Kernels.parallelProductRows(length) { _, begin, end in
            let destination = output.pointer + begin * p.output
            Kernels.serialMatmulTransposed(input.pointer + begin * x.width, lda: x.width, p.weight.pointer, ldb: p.input,
                                           destination, ldc: p.output, m: end - begin, n: p.output, k: p.input)
            if let bias = p.bias {
                Kernels.addBias(destination, rows: end - begin, width: p.output, stride: p.output, bias: bias.pointer)
            }
        }
        return Activations(buffer: out, width: p.output)
    }

    private mutating func attention(_ x: Activations, _ w: AttentionWeights) -> Activations {
        let hs = w.headWidth
        let qkv = project(x, w.qkv)
        let stride = qkv.width
        let q = qkv.buffer.pointer
        let k = q + w.heads * hs
        let v = k + w.kvHeads * hs
        if let tables = rotation(for: w.node.position, headWidth: hs) {
            let (qp, kp) = (UncheckedPointer(q), UncheckedPointer(k))
            Kernels.parallelFor(w.heads + w.kvHeads) { index in
                let isQuery = index < w.heads
                let base = isQuery ? qp.pointer + index * hs : kp.pointer + (index - w.heads) * hs
                Kernels.rotate(base, rows: length, stride: stride, half: tables.pairs,
                               cos: isQuery ? tables.queryCos.pointer : tables.keyCos.pointer,
                               sin: isQuery ? tables.querySin.pointer : tables.keySin.pointer,
                               interleaved: tables.interleaved)
            }
        }
        let out = FloatBuffer(uninitialized: length * w.heads * hs)
        let shape = AttentionShape(length: length, heads: w.heads, kvHeads: w.kvHeads, headWidth: hs, scale: w.scale,
                                   window: w.node.window)
        Kernels.attention(q: q, qStride: stride, k: k, kStride: stride, v: v, vStride: stride, out: out.pointer,
                          outStride: w.heads * hs, shape: shape, bias: BiasTables.make(w, length: length))
        return project(Activations(buffer: out, width: w.heads * hs), w.output)
    }

    private mutating func rotation(for position: AttentionPosition, headWidth: Int) -> RotationTables? {
        if let cached = rotations[position] { return cached }
        let tables: RotationTables
        switch position {
        case .rotary(let rotary): tables = .rotary(rotary, headWidth: headWidth, length: length)
        case .xpos(let xpos): tables = .xpos(xpos, headWidth: headWidth, length: length)
        default: return nil
        }
        rotations[position] = tables
        return tables
    }

    /// The feed-forward block, fused per chunk of rows: each thread runs up (and gate), activation and down on its
    /// own rows with its own hidden scratch of at most `feedForwardChunk` rows, so the hidden activations stay
    /// bounded and in cache, and nothing waits for the other threads until the block is done.
    private func feedForward(_ x: Activations, _ w: FeedForwardWeights) -> Activations {
        let hidden = w.up.output
        let width = w.down.output
        let out = FloatBuffer(uninitialized: length * width)
        let chunk = min(feedForwardChunk, Kernels.productChunk(rows: length))
        let workers = min(Kernels.threads, (length + chunk - 1) / chunk)
        let ups = (0..<workers).map { _ in FloatBuffer(uninitialized: chunk * hidden) }
        let gates = w.gate == nil ? [] : (0..<workers).map { _ in FloatBuffer(uninitialized: chunk * hidden) }
        let kind: Kernels.ActivationKind = switch w.node.activation {
        case .gelu: .gelu
        case .geluTanh: .geluTanh
        case .relu: .relu
        case .silu: .silu
        }
        let (source, output) = (UncheckedPointer(x.buffer.pointer), UncheckedPointer(out.pointer))
        Kernels.parallelProductRows(length, chunk: chunk) { worker, begin, end in
            let rows = end - begin
            let input = source.pointer + begin * x.width
            let up = ups[worker].pointer
            Kernels.serialMatmulTransposed(input, lda: x.width, w.up.weight.pointer, ldb: w.up.input, up, ldc: hidden,
                                           m: rows, n: hidden, k: w.up.input)
            if let bias = w.up.bias { Kernels.addBias(up, rows: rows, width: hidden, stride: hidden, bias: bias.pointer) }
            if let g = w.gate {
                let gate = gates[worker].pointer
                Kernels.serialMatmulTransposed(input, lda: x.width, g.weight.pointer, ldb: g.input, gate, ldc: hidden,
                                               m: rows, n: hidden, k: g.input)
                if let bias = g.bias { Kernels.addBias(gate, rows: rows, width: hidden, stride: hidden, bias: bias.pointer) }
                Kernels.activation(gate, count: rows * hidden, kind: kind)
                Kernels.multiply(up, by: gate, count: rows * hidden)
            } else {
                Kernels.activation(up, count: rows * hidden, kind: kind)
            }
            let destination = output.pointer + begin * width
            Kernels.serialMatmulTransposed(up, lda: hidden, w.down.weight.pointer, ldb: w.down.input, destination, ldc: width,
                                           m: rows, n: width, k: hidden)
            if let bias = w.down.bias { Kernels.addBias(destination, rows: rows, width: width, stride: width, bias: bias.pointer) }
        }
        withExtendedLifetime((ups, gates)) {}
        return Activations(buffer: out, width: width)
    }

    /// The unembedding fused with log-softmax. Each thread takes up to `logitsChunk` rows at a time and walks the
    /// vocabulary in slices of at most `vocabularySlice` columns, folding each slice into a running log-sum-exp: its
    /// logits scratch is `logitsChunk × vocabularySlice` floats whatever the vocabulary (BLOOM's is 250,880), and
    /// there is never a `[length, vocabulary]` matrix.
    func scores(_ x: Activations, head: Projection, targets: [Int32]) -> [Double] {
        let rows = targets.count
        let vocabulary = head.output
        let chunk = min(logitsChunk, Kernels.productChunk(rows: rows))
        let slice = min(vocabulary, vocabularySlice)
        let workers = min(Kernels.threads, (rows + chunk - 1) / chunk)
        let logits = (0..<workers).map { _ in FloatBuffer(uninitialized: chunk * slice) }
        var result = [Double](repeating: 0, count: rows)
        let source = UncheckedPointer(x.buffer.pointer)
        targets.withUnsafeBufferPointer { targets in
            result.withUnsafeMutableBufferPointer { result in
                let (wanted, out) = (UncheckedPointer(UnsafeMutablePointer(mutating: targets.baseAddress!)),
                                     UncheckedPointer(result.baseAddress!))
                Kernels.parallelProductRows(rows, chunk: chunk) { worker, begin, end in
                    let n = end - begin
                    let scratch = logits[worker].pointer
                    var softmax = TargetLogSoftmax(rows: n)
                    var column = 0
                    while column < vocabulary {
                        let columns = min(slice, vocabulary - column)
                        Kernels.serialMatmulTransposed(source.pointer + begin * x.width, lda: x.width,
                                                       head.weight.pointer + column * head.input, ldb: head.input,
                                                       scratch, ldc: columns, m: n, n: columns, k: head.input)
                        if let bias = head.bias {
                            Kernels.addBias(scratch, rows: n, width: columns, stride: columns, bias: bias.pointer + column)
                        }
                        softmax.fold(scratch, columns: columns, leading: columns, column: column,
                                     targets: wanted.pointer + begin)
                        column += columns
                    }
                    softmax.logProbabilities(into: out.pointer + begin)
                }
            }
        }
        withExtendedLifetime(logits) {}
        return result
    }
}
