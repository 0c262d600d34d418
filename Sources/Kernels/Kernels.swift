import CBLAS
import CKernels
import Dispatch
import Foundation

/// An owned, aligned fp32 buffer. The engine's activations live in these; nothing is `[Float]` on the hot path.
public final class FloatBuffer: @unchecked Sendable {
    /// Number of values.
    public let count: Int
    /// The values (64-byte aligned).
    public let pointer: UnsafeMutablePointer<Float>

    /// Allocates `count` values, zeroed.
    public convenience init(count: Int) {
        self.init(uninitialized: count)
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    /// Allocates `count` values without writing them: for outputs a kernel overwrites entirely (no zero pass).
    /// A buffer of the same size freed earlier is reused when there is one (`RecycledMemory`).
    public init(uninitialized count: Int) {
        self.count = count
        let bytes = max(count, 1) * 4
        let raw =
            RecycledMemory.take(bytes: bytes)
            ?? UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    /// Copies `values`.
    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { pointer.update(from: base, count: values.count) }
        }
    }

    deinit {
        if !RecycledMemory.give(UnsafeMutableRawPointer(pointer), bytes: max(count, 1) * 4) { pointer.deallocate() }
    }

    /// The values as an array (tests, small tensors).
    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}

/// Freed activation buffers kept for the next allocation of the same size.
///
/// A pass allocates the same few `[T, width]` shapes in every layer, and every window of a sweep repeats them. Large
/// blocks freed to the allocator go back to the kernel (`munmap`), so each new one costs a page fault and a
/// zeroed page per 4 KiB on first touch — measured at a tenth or more of a 2k pass. Kept here instead, they are
/// reused as they are. At most `limit` bytes are kept, and none of a size rarely asked for stays long: the oldest
/// kept block goes back to the allocator when the limit would be passed.
enum RecycledMemory {
    /// Bytes kept at most (beyond what the pass holds).
    static let limit = 256 << 20
    /// Blocks smaller than this go straight to the allocator (its own free lists serve them well).
    static let smallest = 256 << 10
    private static let lock = NSLock()
    nonisolated(unsafe) private static var kept: [(bytes: Int, pointer: UnsafeMutableRawPointer)] = []
    nonisolated(unsafe) private static var keptBytes = 0

    static func take(bytes: Int) -> UnsafeMutableRawPointer? {
        guard bytes >= smallest else { return nil }
        return lock.withLock {
            guard let index = kept.lastIndex(where: { $0.bytes == bytes }) else { return nil }
            keptBytes -= bytes
            return kept.remove(at: index).pointer
        }
    }

    /// Keeps `pointer` for reuse; false when the caller must free it.
    static func give(_ pointer: UnsafeMutableRawPointer, bytes: Int) -> Bool {
        guard bytes >= smallest, bytes <= limit else { return false }
        var evicted: [UnsafeMutableRawPointer] = []
        lock.withLock {
            while keptBytes + bytes > limit, !kept.isEmpty {
                let oldest = kept.removeFirst()
                keptBytes -= oldest.bytes
                evicted.append(oldest.pointer)
            }
            kept.append((bytes, pointer))
            keptBytes += bytes
        }
        for block in evicted { block.deallocate() }
        return true
    }
}

/// Numeric kernels: BLAS matrix products, fused attention, norms, activations, log-softmax; threading.
public enum Kernels {
    /// Threads the engine computes with: every parallel kernel, and every matrix product, which the engine splits
    /// by rows and hands to OpenBLAS one thread at a time. Defaults to the cores this process may use; set it
    /// before a pass (`extrapolate --threads`), not during one.
    public nonisolated(unsafe) static var threads = max(ProcessInfo.processInfo.activeProcessorCount, 1)

    /// OpenBLAS runs single-threaded inside the engine's own threads. Left to its own pool, its threads spin
    /// for a while after each product and take the cores from the attention and norm kernels that follow.
    private static let blasSingleThreaded: Void = openblas_set_num_threads(1)

    /// Runs `body(worker, item)` for every `item` in `0..<count` on up to `threads` workers, which take items in
    /// order as they finish the previous one. `worker` (`0..<threads`) indexes per-worker scratch.
    /// Called from inside an item of another parallel region, it runs every item on the calling thread.
    public static func parallelWork(_ count: Int, _ body: (_ worker: Int, _ item: Int) -> Void) {
        let workers = ck_in_parallel_region() != 0 ? 1 : min(threads, count)
        if workers <= 1 {
            for item in 0..<count { body(0, item) }
            return
        }
        let counter = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        counter.initialize(to: 0)
        defer { counter.deallocate() }
        let next = UncheckedPointer(counter)
        // Callers write disjoint ranges (that is the contract of this function), so the closure is safe to share.
        withoutActuallyEscaping(body) { escapable in
            let shared = unsafeBitCast(escapable, to: (@Sendable (Int, Int) -> Void).self)
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                let outer = ck_in_parallel_region()
                ck_set_parallel_region(1)
                defer { ck_set_parallel_region(outer) }
                while true {
                    let item = ck_next_item(next.pointer)
                    if item >= count { break }
                    shared(worker, item)
                }
            }
        }
    }

    /// Runs `body(i)` for `i` in `0..<count` on up to `threads` workers.
    public static func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        parallelWork(count) { _, item in body(item) }
    }

    /// Splits `rows` into chunks of at least `minimumChunk` rows and runs `body(begin, end)` for each in parallel.
    public static func parallelRows(_ rows: Int, minimumChunk: Int = 64, _ body: (Int, Int) -> Void) {
        let chunks = min(max(rows / minimumChunk, 1), threads * 4)
        let size = (rows + chunks - 1) / max(chunks, 1)
        parallelFor(chunks) { chunk in
            let begin = chunk * size
            let end = min(begin + size, rows)
            if begin < end { body(begin, end) }
        }
    }

    /// The row blocks the engine's matrix products use in a pass over `rows` rows: from the trained length `base` on,
    /// fixed by position alone, so a row's result does not depend on how long the window is.
    ///
    /// OpenBLAS computes a row of a product differently depending on where it falls in the block it is given (its
    /// kernels treat a block's last rows with other code), so the same row in a shorter and a longer window would
    /// differ in the last bits if blocks followed the window's length. A pass of at least `base` rows is cut into
    /// super-blocks that double from `base` (`[0, b)`, `[b, 2b)`, `[2b, 4b)`, …), each split into equal pieces of
    /// `pieceSize(_:)` rows, up to `rows` (the last piece cut short). A window of `b·2^k` rows is then computed exactly
    /// as the first rows of any longer window: what exact prefix sharing in sweeps relies on. A pass shorter than
    /// `base` is split evenly between the threads (`productChunk(rows:)`). `limit` splits each piece further (the
    /// feed-forward and head scratch), which keeps every boundary.
    public static func rowBlocks(rows: Int, base: Int, limit: Int = .max) -> [Range<Int>] {
        var pieces: [Range<Int>] = []
        if rows < base {
            let chunk = productChunk(rows: rows)
            pieces = stride(from: 0, to: rows, by: chunk).map { $0..<min($0 + chunk, rows) }
        } else {
            var start = 0
            var size = max(base, 1)
            while start < rows {
                let piece = pieceSize(size)
                var begin = start
                while begin < start + size, begin < rows {
                    let end = min(begin + piece, start + size, rows)
                    pieces.append(begin..<end)
                    begin = end
                }
                start += size
                if start > size { size *= 2 }  // [0, b) and [b, 2b) are both b rows; then each doubles
            }
        }
        let step = max(limit, 1)
        return pieces.flatMap { piece in
            stride(from: piece.lowerBound, to: piece.upperBound, by: step).map {
                $0..<($0 + min(step, piece.upperBound - $0))
            }
        }
    }

    /// Rows of each piece of a super-block of `size` rows: as many pieces as threads (no fewer than 256 rows
    /// each, OpenBLAS slows below that), and no more than 1,024 rows (its full speed, and each piece re-packs the
    /// weight matrix).
    public static func pieceSize(_ size: Int) -> Int {
        min(max((size + threads - 1) / threads, 256), 1024)
    }

    /// Whether the first `prefix` rows of a pass over `rows` rows are computed exactly as a pass over `prefix` rows
    /// (the blocks of the shorter pass are the first blocks of the longer one). Always for `base` times a power of
    /// two, and for `prefix == rows`.
    public static func rowBlocksShare(prefix: Int, of rows: Int, base: Int) -> Bool {
        if prefix == rows { return true }
        guard prefix < rows else { return false }
        let short = rowBlocks(rows: prefix, base: base)
        return Array(rowBlocks(rows: rows, base: base).prefix(short.count)) == short
    }

    /// Runs `body(worker, begin, end)` for each of `blocks` in parallel, longest first.
    public static func parallelBlocks(
        _ blocks: [Range<Int>], _ body: (_ worker: Int, _ begin: Int, _ end: Int) -> Void
    ) {
        let ordered = blocks.sorted { $0.count > $1.count }
        parallelWork(ordered.count) { worker, item in body(worker, ordered[item].lowerBound, ordered[item].upperBound) }
    }

    /// Rows of one matrix-product work item for `rows` rows: one item per thread up to 1,024 rows each (OpenBLAS
    /// reaches its full speed from about 512 rows, and every item re-packs the weight matrix).
    public static func productChunk(rows: Int) -> Int {
        min(max((rows + threads - 1) / threads, 1), 1024)
    }

    /// Splits `rows` into items of `chunk` rows (default `productChunk(rows:)`) and runs `body(worker, begin, end)`
    /// for each in parallel.
    public static func parallelProductRows(
        _ rows: Int, chunk: Int? = nil, _ body: (_ worker: Int, _ begin: Int, _ end: Int) -> Void
    ) {
        let chunk = max(chunk ?? productChunk(rows: rows), 1)
        parallelWork((rows + chunk - 1) / chunk) { worker, item in
            body(worker, item * chunk, min(item * chunk + chunk, rows))
        }
    }

    /// `C[m, n] = A[m, k] · B[n, k]ᵀ` (+ `C` when `accumulate`), row-major with leading dimensions, on all
    /// `threads` (rows split between them). `B` is a weight matrix stored `[out, in]`, the `nn.Linear` layout.
    public static func matmulTransposed(
        _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int, _ c: UnsafeMutablePointer<Float>,
        ldc: Int,
        m: Int, n: Int, k: Int, accumulate: Bool = false
    ) {
        let (pa, pc) = (UncheckedPointer(UnsafeMutablePointer(mutating: a)), UncheckedPointer(c))
        let pb = UncheckedPointer(UnsafeMutablePointer(mutating: b))
        parallelProductRows(m) { _, begin, end in
            serialMatmulTransposed(
                pa.pointer + begin * lda, lda: lda, pb.pointer, ldb: ldb, pc.pointer + begin * ldc, ldc: ldc,
                m: end - begin, n: n, k: k, accumulate: accumulate)
        }
    }

    /// `C[m, n] = op(A)·op(B)` (+ `C` when `accumulate`), row-major with leading dimensions, on all `threads`: op(A)
    /// is `[m, k]`, stored `[k, m]` when `transposeA`; op(B) is `[k, n]`, stored `[n, k]` when `transposeB`. The
    /// backward pass's products (`dX = dY·W`, `dW += dYᵀ·X`). C is split between the threads by
    /// `splitBetweenThreads`: every thread packs all of the operand along the side not split, so a split along the far
    /// longer side packs the smaller operand twice instead of the larger.
    public static func gemm(
        _ a: UnsafePointer<Float>, lda: Int, transposeA: Bool, _ b: UnsafePointer<Float>, ldb: Int, transposeB: Bool,
        _ c: UnsafeMutablePointer<Float>, ldc: Int, m: Int, n: Int, k: Int, accumulate: Bool = false
    ) {
        guard m > 0, n > 0 else { return }
        let (pa, pc) = (UncheckedPointer(UnsafeMutablePointer(mutating: a)), UncheckedPointer(c))
        let pb = UncheckedPointer(UnsafeMutablePointer(mutating: b))
        _ = blasSingleThreaded
        splitBetweenThreads(m: m, n: n) { rows, columns in
            let a = transposeA ? pa.pointer + rows.lowerBound : pa.pointer + rows.lowerBound * lda
            let b = transposeB ? pb.pointer + columns.lowerBound * ldb : pb.pointer + columns.lowerBound
            cblas_sgemm(
                CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                Int32(rows.count), Int32(columns.count), Int32(k), 1, a, Int32(lda), b, Int32(ldb), accumulate ? 1 : 0,
                pc.pointer + rows.lowerBound * ldc + columns.lowerBound, Int32(ldc))
        }
    }

    /// `C[m, n] = A[m, k] · B[n, k]ᵀ + bias[n]` (a linear layer, B stored `[out, in]`) on all `threads`, C split
    /// as `gemm` splits it.
    public static func linear(
        _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int, bias: UnsafePointer<Float>?,
        _ c: UnsafeMutablePointer<Float>, ldc: Int, m: Int, n: Int, k: Int
    ) {
        guard m > 0, n > 0 else { return }
        let (pa, pb, pc) = (
            UncheckedPointer(UnsafeMutablePointer(mutating: a)), UncheckedPointer(UnsafeMutablePointer(mutating: b)),
            UncheckedPointer(c)
        )
        let pbias = bias.map { UncheckedPointer(UnsafeMutablePointer(mutating: $0)) }
        splitBetweenThreads(m: m, n: n) { rows, columns in
            serialLinear(
                pa.pointer + rows.lowerBound * lda, lda: lda, pb.pointer + columns.lowerBound * ldb, ldb: ldb,
                bias: pbias.map { UnsafePointer($0.pointer + columns.lowerBound) },
                pc.pointer + rows.lowerBound * ldc + columns.lowerBound, ldc: ldc, m: rows.count, n: columns.count,
                k: k)
        }
    }

    /// Runs `body(rows, columns)` for blocks of an `m × n` product split between the threads (in pieces of at least
    /// 16), the other side whole: the columns when there are at least twice as many as rows (a projection of a short
    /// window, the head's logits), else the rows, whose blocks OpenBLAS runs best; the same blocks for the same shape
    /// and thread count.
    static func splitBetweenThreads(m: Int, n: Int, _ body: (_ rows: Range<Int>, _ columns: Range<Int>) -> Void) {
        if n >= 2 * m {
            parallelProductRows(n, chunk: max((n + threads - 1) / threads, 16)) { _, begin, end in
                body(0..<m, begin..<end)
            }
        } else {
            parallelProductRows(m, chunk: max((m + threads - 1) / threads, 16)) { _, begin, end in
                body(begin..<end, 0..<n)
            }
        }
    }

    /// `matmulTransposed` on the calling thread only (inside a parallel region).
    public static func serialMatmulTransposed(
        _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int, _ c: UnsafeMutablePointer<Float>,
        ldc: Int,
        m: Int, n: Int, k: Int, accumulate: Bool = false
    ) {
        guard m > 0, n > 0 else { return }
        _ = blasSingleThreaded
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b,
            Int32(ldb), accumulate ? 1 : 0, c, Int32(ldc))
    }

    /// The set of our own kernels in use: `avx512`, `avx2` or `generic`, chosen from the CPU's features when the
    /// library loads (`EXTRAPOLATE_KERNELS` forces one the CPU supports).
    public static var kernelSet: String { String(cString: ck_kernel_set()) }

    /// What the CPU supports, from cpuid: 3 = AVX-512, 2 = AVX2 + FMA, 1 = neither.
    public static var cpuLevel: Int { Int(ck_cpu_level()) }

    /// `EXTRAPOLATE_KERNELS` when it asked for a set this CPU lacks (the best it has runs instead).
    public static var refusedKernelSet: String? { ck_kernel_set_refused().map { String(cString: $0) } }

    /// The OpenBLAS kernel set this CPU deserves when OpenBLAS chose a weaker one (`SkylakeX` for AVX-512, `Haswell`
    /// for AVX2 + FMA), else `nil`. OpenBLAS picks from its table of CPU models, and 0.3.21 does not know recent ones:
    /// on a Sapphire Rapids Xeon it falls back to Prescott (SSE3), 4× slower. The decision is made here, from the
    /// CPU's own features (cpuid), and applied by the command before any work (`OPENBLAS_CORETYPE` is read when the
    /// library loads, so the process re-executes itself once).
    public static func betterBLASCore(current: String = blasCore, cpuLevel: Int = cpuLevel) -> String? {
        let name = current.lowercased()
        let level =
            ["skylakex", "cooperlake", "sapphirerapids"].contains(name)
            ? 3 : (["haswell", "zen", "skylake"].contains(name) ? 2 : 1)
        if cpuLevel >= 3, level < 3 { return "SkylakeX" }
        if cpuLevel == 2, level < 2 { return "Haswell" }
        return nil
    }

    /// The name of the OpenBLAS kernel set in use (`SkylakeX`, `Haswell`, …).
    public static var blasCore: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// Layer norm of each row, in place or into `out` (same stride), parallel over rows.
    public static func layerNorm(
        _ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, stride: Int,
        gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?, epsilon: Float,
        into out: UnsafeMutablePointer<Float>? = nil
    ) {
        let (base, destination) = (UncheckedPointer(x), UncheckedPointer(out ?? x))
        parallelRows(rows, minimumChunk: 256) { begin, end in
            ck_layer_norm(
                base.pointer + begin * stride, destination.pointer + begin * stride, end - begin, width, stride, gamma,
                beta, epsilon)
        }
    }

    /// RMS norm of each row, in place or into `out` (same stride).
    public static func rmsNorm(
        _ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, stride: Int,
        gamma: UnsafePointer<Float>?, epsilon: Float, into out: UnsafeMutablePointer<Float>? = nil
    ) {
        let (base, destination) = (UncheckedPointer(x), UncheckedPointer(out ?? x))
        parallelRows(rows, minimumChunk: 256) { begin, end in
            ck_rms_norm(
                base.pointer + begin * stride, destination.pointer + begin * stride, end - begin, width, stride, gamma,
                epsilon)
        }
    }

    /// Activation kinds of `activation(_:count:kind:)`.
    public enum ActivationKind: Sendable {
        case gelu, geluTanh, relu, silu

        var kernel: ck_activation_kind {
            switch self {
            case .gelu: CK_ACTIVATION_GELU
            case .geluTanh: CK_ACTIVATION_GELU_TANH
            case .relu: CK_ACTIVATION_RELU
            case .silu: CK_ACTIVATION_SILU
            }
        }
    }

    /// Applies an activation to `count` contiguous values in place, on the calling thread (the feed-forward block
    /// calls it inside its own parallel region).
    public static func activation(_ x: UnsafeMutablePointer<Float>, count: Int, kind: ActivationKind) {
        ck_activation(x, count, kind.kernel)
    }

    /// `x ⊙= y` over `count` values, on the calling thread.
    public static func multiply(_ x: UnsafeMutablePointer<Float>, by y: UnsafePointer<Float>, count: Int) {
        ck_multiply(x, y, count)
    }

    /// `x ← cap · tanh(x / cap)` over `count` values, on the calling thread (logit soft-capping).
    public static func softcap(_ x: UnsafeMutablePointer<Float>, count: Int, cap: Float) { ck_softcap(x, count, cap) }

    /// `x += y` over `count` values.
    public static func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int) {
        let (bx, by) = (UncheckedPointer(x), UncheckedPointer(UnsafeMutablePointer(mutating: y)))
        parallelRows(count, minimumChunk: 1 << 16) { begin, end in
            ck_add(bx.pointer + begin, by.pointer + begin, end - begin)
        }
    }

    /// `destination[c, r] = source[r, c]` for a row-major `[rows, columns]` source, in cache-sized tiles, on all
    /// threads (each writes its own band of destination rows). Any element type: fp32 values, or 16-bit ones kept as
    /// stored. Inlinable, so callers get it specialised for their element type (unspecialised, each element went
    /// through the type's value witnesses: a GPT-2 load spent a tenth of its time here).
    @inlinable
    public static func transpose<Element>(
        _ source: UnsafePointer<Element>, rows: Int, columns: Int,
        into destination: UnsafeMutablePointer<Element>
    ) {
        let tile = 32
        let (from, to) = (UncheckedPointer(UnsafeMutablePointer(mutating: source)), UncheckedPointer(destination))
        parallelFor((columns + tile - 1) / tile) { band in
            let c0 = band * tile, c1 = min(c0 + tile, columns)
            for r0 in stride(from: 0, to: rows, by: tile) {
                for r in r0..<min(r0 + tile, rows) {
                    for c in c0..<c1 { to.pointer[c * rows + r] = from.pointer[r * columns + c] }
                }
            }
        }
    }

    /// `C[m, n] = A[m, k] · B[n, k]ᵀ + bias[n]` on the calling thread: a linear layer. With a bias, C's rows start
    /// as the bias and OpenBLAS accumulates onto them; without one it is `serialMatmulTransposed`. OpenBLAS zeroes
    /// C before any product it does not accumulate, so starting from the bias costs no more than that zeroing
    /// did, and there is no second pass over C to add the bias afterwards. `accumulate` adds the layer's output
    /// onto what C holds instead (C += A·Bᵀ + bias): a residual stream takes its branch's last projection without
    /// OpenBLAS's zeroing pass, an output buffer, or a separate addition.
    public static func serialLinear(
        _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int, bias: UnsafePointer<Float>?,
        _ c: UnsafeMutablePointer<Float>, ldc: Int, m: Int, n: Int, k: Int, accumulate: Bool = false
    ) {
        if let bias {
            for r in 0..<m {
                if accumulate { ck_add(c + r * ldc, bias, n) } else { (c + r * ldc).update(from: bias, count: n) }
            }
        }
        serialMatmulTransposed(
            a, lda: lda, b, ldb: ldb, c, ldc: ldc, m: m, n: n, k: k, accumulate: accumulate || bias != nil)
    }

    /// Rotates the first `2·half` entries of each row by the per-row cos/sin tables (`[rows, half]`).
    public static func rotate(
        _ x: UnsafeMutablePointer<Float>, rows: Int, stride: Int, half: Int,
        cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, interleaved: Bool
    ) {
        ck_rotate(x, rows, stride, half, cos, sin, interleaved ? 1 : 0)
    }

    /// For each row, the log-probability of its target under softmax(row) (NaN for a target outside the row).
    public static func logSoftmaxGather(
        _ logits: UnsafePointer<Float>, rows: Int, vocabulary: Int,
        targets: UnsafePointer<Int32>, into out: UnsafeMutablePointer<Double>
    ) {
        var softmax = TargetLogSoftmax(rows: rows)
        softmax.fold(logits, columns: vocabulary, leading: vocabulary, column: 0, targets: targets)
        softmax.logProbabilities(into: out)
    }

    /// `y = erf(x)` over `count` values with the vectorised kernel, on the calling thread.
    public static func erf(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
        ck_erf(x, y, count)
    }

    /// The vectorised `erf` the GELU kernel uses (for tests of its accuracy).
    public static func erf(_ values: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { x in
            out.withUnsafeMutableBufferPointer { y in ck_erf(x.baseAddress, y.baseAddress, values.count) }
        }
        return out
    }

    /// `y = exp(x)` over `count` values with the vectorised kernel, on the calling thread (`y` may be `x`).
    public static func exp(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
        ck_exp(x, y, count)
    }

    /// The largest of `count` values, on the calling thread, sixteen lanes at a time (−∞ for none).
    public static func maximum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var lanes = SIMD16<Float>(repeating: -.infinity)
        var i = 0
        while i + 16 <= count {
            // A compare and a blend (pointwiseMax went lane by lane: a sixth of a GPT-2 training step).
            let values = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
            lanes.replace(with: values, where: values .> lanes)
            i += 16
        }
        var result = lanes.max()
        while i < count {
            result = Swift.max(result, x[i])
            i += 1
        }
        return result
    }

    /// `Σ x` over `count` values in Float64, on the calling thread, eight lanes at a time added in a fixed order
    /// (the same bits every time).
    public static func sum(_ x: UnsafePointer<Float>, count: Int) -> Double {
        var lanes = SIMD8<Double>(repeating: 0)
        var i = 0
        while i + 8 <= count {
            lanes += SIMD8<Double>(UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self))
            i += 8
        }
        var result = lanes.sum()
        while i < count {
            result += Double(x[i])
            i += 1
        }
        return result
    }

    /// The vectorised `exp` the attention kernel uses (for tests of its accuracy).
    public static func exp(_ values: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { x in
            out.withUnsafeMutableBufferPointer { y in ck_exp(x.baseAddress, y.baseAddress, values.count) }
        }
        return out
    }
}

/// The log-softmax of each row's target when the row's logits arrive in column slices (the vocabulary head computes
/// a slice at a time so its scratch does not grow with the vocabulary): a running maximum and Float64 sum per row,
/// and the target's logit once its slice has been seen.
public struct TargetLogSoftmax {
    private var maximum: [Float]
    private var sum: [Double]
    private var target: [Float]

    /// State for `rows` rows, before any slice.
    public init(rows: Int) {
        maximum = [Float](repeating: -.infinity, count: rows)
        sum = [Double](repeating: 0, count: rows)
        target = [Float](repeating: .nan, count: rows)
    }

    /// Folds vocabulary columns `[column, column + columns)` of every row (`leading` floats apart); `targets[r]` is
    /// row `r`'s target token. Runs on the calling thread.
    public mutating func fold(
        _ logits: UnsafePointer<Float>, columns: Int, leading: Int, column: Int,
        targets: UnsafePointer<Int32>
    ) {
        ck_logsumexp_fold(logits, maximum.count, columns, leading, column, targets, &maximum, &sum, &target)
    }

    /// `log p(target)` of every row once all slices are folded; NaN where the target was in no slice.
    public func logProbabilities(into out: UnsafeMutablePointer<Double>) {
        for r in 0..<maximum.count { out[r] = Double(target[r]) - Double(maximum[r]) - Foundation.log(sum[r]) }
    }

    /// Whether each row's target has the largest logit of the row (greedy decoding would choose it; a target tied
    /// with another token at the maximum counts as chosen), once all slices are folded.
    public func targetIsMaximum(into out: UnsafeMutablePointer<Bool>) {
        for r in 0..<maximum.count { out[r] = target[r] >= maximum[r] }
    }
}

/// A pointer that may cross into concurrent closures; each closure must touch a disjoint range.
public struct UncheckedPointer<T>: @unchecked Sendable {
    /// The pointer.
    public let pointer: UnsafeMutablePointer<T>
    /// Wraps `pointer`.
    public init(_ pointer: UnsafeMutablePointer<T>) { self.pointer = pointer }
}
