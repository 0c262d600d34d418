import Kernels

extension Forward {
    /// The feed-forward block, fused per chunk of rows: each thread runs up (and gate), activation and down on its
    /// own row block (`Kernels.rowBlocks`) with its own hidden scratch of at most `feedForwardChunk` rows, so the hidden activations stay
    /// bounded and in cache, and nothing waits for the other threads until the block is done.
    /// With a `target` (`[T, C]`), the down projection is added onto it instead of written to a new buffer.
    func feedForward(_ x: Activations, _ w: FeedForwardWeights, onto target: Activations? = nil) -> Activations {
        let hidden = w.up.output
        let width = w.down.output
        let out = target?.buffer ?? FloatBuffer(uninitialized: length * width)  // [T, C]
        let blocks = feedForwardBlocks
        let chunk = blocks.map(\.count).max() ?? 1
        let workers = min(Kernels.threads, blocks.count)
        let ups = (0..<workers).map { _ in FloatBuffer(uninitialized: chunk * hidden) }  // per worker [chunk, F]
        let gates = w.gate == nil ? [] : (0..<workers).map { _ in FloatBuffer(uninitialized: chunk * hidden) }
        let kind: Kernels.ActivationKind =
            switch w.node.activation {
            case .gelu: .gelu
            case .geluTanh: .geluTanh
            case .relu: .relu
            case .silu: .silu
            }
        let (source, output) = (UncheckedPointer(x.buffer.pointer), UncheckedPointer(out.pointer))
        let upWeight = widening.operand(w.up.weight, slot: 0)
        let gateWeight = w.gate.map { widening.operand($0.weight, slot: 1) }
        let downWeight = widening.operand(w.down.weight, slot: 2)
        Kernels.parallelBlocks(blocks) { worker, begin, end in
            let rows = end - begin
            let input = source.pointer + begin * x.width
            let up = ups[worker].pointer
            upWeight.linear(
                input, lda: x.width, bias: w.up.bias?.pointer, up, ldc: hidden, m: rows, n: hidden, k: w.up.input)
            if let g = w.gate, let gateWeight {
                let gate = gates[worker].pointer
                gateWeight.linear(
                    input, lda: x.width, bias: g.bias?.pointer, gate, ldc: hidden, m: rows, n: hidden, k: g.input)
                Kernels.activation(gate, count: rows * hidden, kind: kind)
                Kernels.multiply(up, by: gate, count: rows * hidden)
            } else {
                Kernels.activation(up, count: rows * hidden, kind: kind)
            }
            let destination = output.pointer + begin * width
            downWeight.linear(
                up, lda: hidden, bias: w.down.bias?.pointer, destination, ldc: width, m: rows, n: width, k: hidden,
                accumulate: target != nil)
        }
        withExtendedLifetime((ups, gates)) {}
        return Activations(buffer: out, width: width)
    }
}
