import Kernels

extension Forward {
    /// The unembedding fused with log-softmax. Each thread takes a row block (`Kernels.rowBlocks`) of at most `logitsChunk` rows at a time and walks the
    /// vocabulary in slices of at most `vocabularySlice` columns, folding each slice into a running log-sum-exp: its
    /// logits scratch is `logitsChunk × vocabularySlice` floats whatever the vocabulary (BLOOM's is 250,880), and
    /// there is never a `[length, vocabulary]` matrix.
    ///
    /// `greedy`, when given, receives for every row whether its target has the row's largest logit (`targets.count`
    /// values).
    func scores(
        _ x: Activations, head: Projection, softcap: Float? = nil, targets: [Int32],
        greedy: UnsafeMutablePointer<Bool>? = nil
    ) -> [Double] {
        let rows = targets.count
        let vocabulary = head.output
        let blocks = Kernels.rowBlocks(rows: rows, base: rowBase, limit: logitsChunk)
        let chunk = blocks.map(\.count).max() ?? 1
        let slice = min(vocabulary, vocabularySlice)
        let workers = min(Kernels.threads, blocks.count)
        let logits = (0..<workers).map { _ in FloatBuffer(uninitialized: chunk * slice) }  // [chunk, slice]
        var result = [Double](repeating: 0, count: rows)  // [T]: log p of each target
        let source = UncheckedPointer(x.buffer.pointer)
        let weight = widening.operand(head.weight)
        let chosen = greedy.map { UncheckedPointer($0) }
        targets.withUnsafeBufferPointer { targets in
            result.withUnsafeMutableBufferPointer { result in
                let (wanted, out) = (
                    UncheckedPointer(UnsafeMutablePointer(mutating: targets.baseAddress!)),
                    UncheckedPointer(result.baseAddress!)
                )
                Kernels.parallelBlocks(blocks) { worker, begin, end in
                    let n = end - begin
                    let scratch = logits[worker].pointer
                    var softmax = TargetLogSoftmax(rows: n)
                    var column = 0
                    while column < vocabulary {
                        let columns = min(slice, vocabulary - column)
                        weight.linear(
                            source.pointer + begin * x.width, lda: x.width, column0: column,
                            bias: head.bias.map { UnsafePointer($0.pointer + column) }, scratch, ldc: columns,
                            m: n, n: columns, k: head.input)
                        if let softcap { Kernels.softcap(scratch, count: n * columns, cap: softcap) }
                        softmax.fold(
                            scratch, columns: columns, leading: columns, column: column,
                            targets: wanted.pointer + begin)
                        column += columns
                    }
                    softmax.logProbabilities(into: out.pointer + begin)
                    if let chosen { softmax.targetIsMaximum(into: chosen.pointer + begin) }
                }
            }
        }
        withExtendedLifetime(logits) {}
        return result
    }
}
