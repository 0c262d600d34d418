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
    public init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    /// Copies `values`.
    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { pointer.update(from: base, count: values.count) }
        }
    }

    deinit { pointer.deallocate() }

    /// The values as an array (tests, small tensors).
    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}

/// Numeric kernels: BLAS matrix products, fused attention, norms, activations, log-softmax; threading.
public enum Kernels {
    /// Worker threads used by the parallel kernels (all cores).
    public static var threads: Int { max(ProcessInfo.processInfo.activeProcessorCount, 1) }

    /// Runs `body(i)` for `i` in `0..<count` on all cores.
    public static func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        if count <= 1 {
            if count == 1 { body(0) }
            return
        }
        // Callers write disjoint ranges (that is the contract of this function), so the closure is safe to share.
        withoutActuallyEscaping(body) { escapable in
            let shared = unsafeBitCast(escapable, to: (@Sendable (Int) -> Void).self)
            DispatchQueue.concurrentPerform(iterations: count, execute: shared)
        }
    }

    /// Splits `rows` into chunks and runs `body(begin, end)` for each in parallel.
    public static func parallelRows(_ rows: Int, minimumChunk: Int = 64, _ body: (Int, Int) -> Void) {
        let chunks = min(max(rows / minimumChunk, 1), threads * 4)
        let size = (rows + chunks - 1) / max(chunks, 1)
        parallelFor(chunks) { chunk in
            let begin = chunk * size
            let end = min(begin + size, rows)
            if begin < end { body(begin, end) }
        }
    }

    /// `C[m, n] = A[m, k] · B[n, k]ᵀ` (+ `C` when `accumulate`), row-major with leading dimensions.
    /// `B` is a weight matrix stored `[out, in]`, the PyTorch `nn.Linear` layout.
    public static func matmulTransposed(
        _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int, _ c: UnsafeMutablePointer<Float>, ldc: Int,
        m: Int, n: Int, k: Int, accumulate: Bool = false
    ) {
        guard m > 0, n > 0 else { return }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b,
                    Int32(ldb), accumulate ? 1 : 0, c, Int32(ldc))
    }

    /// The name of the OpenBLAS kernel set in use (`SkylakeX`, `Haswell`, …).
    public static var blasCore: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// Layer norm of each row, in place (parallel over rows).
    public static func layerNorm(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, stride: Int,
                                 gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?, epsilon: Float) {
        let base = UncheckedPointer(x)
        parallelRows(rows, minimumChunk: 256) { begin, end in
            ck_layer_norm(base.pointer + begin * stride, end - begin, width, stride, gamma, beta, epsilon)
        }
    }

    /// RMS norm of each row, in place.
    public static func rmsNorm(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, stride: Int,
                               gamma: UnsafePointer<Float>?, epsilon: Float) {
        let base = UncheckedPointer(x)
        parallelRows(rows, minimumChunk: 256) { begin, end in
            ck_rms_norm(base.pointer + begin * stride, end - begin, width, stride, gamma, epsilon)
        }
    }

    /// Activation kinds of `activation(_:count:kind:)`.
    public enum ActivationKind: Int32, Sendable { case gelu = 0, geluTanh = 1, relu = 2, silu = 3 }

    /// Applies an activation to `count` contiguous values in place.
    public static func activation(_ x: UnsafeMutablePointer<Float>, count: Int, kind: ActivationKind) {
        let base = UncheckedPointer(x)
        parallelRows(count, minimumChunk: 1 << 16) { begin, end in
            ck_activation(base.pointer + begin, end - begin, kind.rawValue)
        }
    }

    /// `x ⊙= y` over `count` values.
    public static func multiply(_ x: UnsafeMutablePointer<Float>, by y: UnsafePointer<Float>, count: Int) {
        let (bx, by) = (UncheckedPointer(x), UncheckedPointer(UnsafeMutablePointer(mutating: y)))
        parallelRows(count, minimumChunk: 1 << 16) { begin, end in
            ck_multiply(bx.pointer + begin, by.pointer + begin, end - begin)
        }
    }

    /// `x *= factor` over `count` values.
    public static func scale(_ x: UnsafeMutablePointer<Float>, by factor: Float, count: Int) {
        for i in 0..<count { x[i] *= factor }
    }

    /// `x += y` over `count` values.
    public static func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int) {
        let (bx, by) = (UncheckedPointer(x), UncheckedPointer(UnsafeMutablePointer(mutating: y)))
        parallelRows(count, minimumChunk: 1 << 16) { begin, end in
            ck_add(bx.pointer + begin, by.pointer + begin, end - begin)
        }
    }

    /// Adds `bias[width]` to every row.
    public static func addBias(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, stride: Int, bias: UnsafePointer<Float>) {
        ck_add_bias(x, rows, width, stride, bias)
    }

    /// Rotates the first `2·half` entries of each row by the per-row cos/sin tables (`[rows, half]`).
    public static func rotate(_ x: UnsafeMutablePointer<Float>, rows: Int, stride: Int, half: Int,
                              cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, interleaved: Bool) {
        ck_rotate(x, rows, stride, half, cos, sin, interleaved ? 1 : 0)
    }

    /// For each row, the log-probability of its target under softmax(row).
    public static func logSoftmaxGather(_ logits: UnsafePointer<Float>, rows: Int, vocabulary: Int,
                                        targets: UnsafePointer<Int32>, into out: UnsafeMutablePointer<Double>) {
        let (bl, bt, bo) = (UncheckedPointer(UnsafeMutablePointer(mutating: logits)),
                            UncheckedPointer(UnsafeMutablePointer(mutating: targets)), UncheckedPointer(out))
        parallelRows(rows, minimumChunk: 8) { begin, end in
            ck_log_softmax_gather(bl.pointer + begin * vocabulary, end - begin, vocabulary, bt.pointer + begin,
                                  bo.pointer + begin)
        }
    }

    /// The vectorised `erf` the GELU kernel uses (for tests of its accuracy).
    public static func erf(_ values: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { x in
            out.withUnsafeMutableBufferPointer { y in ck_erf(x.baseAddress, y.baseAddress, values.count) }
        }
        return out
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

/// A pointer that may cross into concurrent closures; each closure must touch a disjoint range.
public struct UncheckedPointer<T>: @unchecked Sendable {
    /// The pointer.
    public let pointer: UnsafeMutablePointer<T>
    /// Wraps `pointer`.
    public init(_ pointer: UnsafeMutablePointer<T>) { self.pointer = pointer }
}
