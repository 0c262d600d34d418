import Checkpoints
import Kernels

/// How a model's 16-bit matrices (F16, BF16) are held in memory. The numbers are the same bit for bit either way:
/// widening a 16-bit value to fp32 is exact, and a product always runs over the fp32 values.
public enum WeightStorage: String, Sendable, CaseIterable {
    /// At their stored precision when widening them at load would cost more than `automaticLimit` bytes beyond the
    /// stored ones (about 400 M 16-bit parameters), else widened at load.
    case automatic
    /// Projection and embedding matrices at 2 bytes a value, widened to fp32 just before each product (per matrix,
    /// into scratch reused by the next one): a 7B model in bf16 takes its 13.5 GB, not 27 GB.
    case stored
    /// Every weight widened to fp32 at load: the fastest passes, twice the memory of a 16-bit checkpoint.
    case float32

    /// Extra bytes widening at load may cost before `automatic` keeps matrices as stored: 768 MiB, so a model
    /// widened at load stays within its stored size plus 1 GiB, the engine's memory budget beyond the activations.
    public static let automaticLimit = 768 << 20

    /// Whether matrices stored in 16 bits are kept so, for a checkpoint holding `halfBytes` bytes of 16-bit tensors.
    func keepsHalf(halfBytes: Int) -> Bool {
        switch self {
        case .automatic: halfBytes > Self.automaticLimit
        case .stored: true
        case .float32: false
        }
    }
}

/// The arithmetic of a model's matrix products.
public enum Precision: String, Sendable, Hashable, Codable, CaseIterable {
    /// fp32 products over the weights' exact values (the default; every number reproducible bit for bit).
    case float32
    /// Products with both operands rounded to bfloat16 and fp32 accumulation (AVX512-BF16's `vdpbf16ps`), about
    /// twice as fast; norms, softmax and the log-softmax stay fp32. Only on CPUs with AVX512-BF16; every result says
    /// it was computed so.
    case bf16

    /// Whether this CPU computes in this precision; `nil`, or the reason it cannot.
    public var unavailableReason: String? {
        switch self {
        case .float32: return nil
        case .bf16:
            if Kernels.hasBF16Products { return nil }
            if Kernels.cpuLevel == 3 && Kernels.kernelSet != "avx512" {
                return "--precision bf16 needs the avx512 kernel set (EXTRAPOLATE_KERNELS=\(Kernels.kernelSet) is set)"
            }
            return "--precision bf16 needs a CPU with AVX512-BF16 (AMD Zen 4 or later, Intel Cooper Lake or Sapphire "
                + "Rapids or later); this one has none. Leave --precision out for exact fp32"
        }
    }
}

/// A weight matrix `[rows, columns]`, row-major, as the engine holds it: fp32, 16-bit as stored, or packed in
/// bfloat16 for `--precision bf16`'s products.
package enum Weights: @unchecked Sendable {
    case float(FloatBuffer)
    case half(HalfBuffer)
    case packed(PackedBF16)

    /// Number of values.
    var count: Int {
        switch self {
        case .float(let buffer): buffer.count
        case .half(let buffer): buffer.count
        case .packed(let buffer): buffer.rows * buffer.columns
        }
    }

    /// Bytes held in memory.
    var bytes: Int {
        switch self {
        case .float(let buffer): buffer.count * 4
        case .half(let buffer): buffer.bytes
        case .packed(let buffer): buffer.bytes
        }
    }

    /// Bytes of fp32 scratch a product over it needs (none for fp32 values).
    var wideningBytes: Int {
        if case .half(let buffer) = self { return buffer.count * 4 }
        return 0
    }

    /// A new matrix of `count` values in this one's precision, which `body(source, destination, elementBytes)` fills
    /// from this one's: every rearrangement (transpose, head reorder, a range of rows) is written once, over elements
    /// of 4 or 2 bytes, and a 16-bit matrix stays 16-bit.
    func rearranged(count: Int, _ body: (UnsafeMutableRawPointer, UnsafeMutableRawPointer, Int) -> Void) -> Weights {
        switch self {
        case .float(let values):
            let result = FloatBuffer(uninitialized: count)
            body(UnsafeMutableRawPointer(values.pointer), UnsafeMutableRawPointer(result.pointer), 4)
            return .float(result)
        case .half(let values):
            let result = HalfBuffer(uninitialized: count, format: values.format)
            body(UnsafeMutableRawPointer(values.pointer), UnsafeMutableRawPointer(result.pointer), 2)
            return .half(result)
        case .packed:
            preconditionFailure("a packed matrix is final: rearrange before packing")
        }
    }

    /// `[columns, rows]` from a row-major `[rows, columns]` matrix (GPT-2's Conv1D `[in, out]` to `[out, in]`).
    func transposed(rows: Int, columns: Int) -> Weights {
        rearranged(count: rows * columns) { source, destination, bytes in
            if bytes == 2 {
                Kernels.transpose(
                    source.assumingMemoryBound(to: UInt16.self), rows: rows, columns: columns,
                    into: destination.assumingMemoryBound(to: UInt16.self))
            } else {
                Kernels.transpose(
                    source.assumingMemoryBound(to: UInt32.self), rows: rows, columns: columns,
                    into: destination.assumingMemoryBound(to: UInt32.self))
            }
        }
    }

    /// Row `row` of a `[rows, width]` matrix widened into `destination` (`width` floats).
    package func copyRow(_ row: Int, width: Int, into destination: UnsafeMutablePointer<Float>) {
        switch self {
        case .float(let buffer): destination.update(from: buffer.pointer + row * width, count: width)
        case .half(let buffer): buffer.widen(from: row * width, count: width, into: destination)
        case .packed: preconditionFailure("rows are read from the embedding table, which is never packed")
        }
    }

    /// This `[rows, columns]` matrix packed in bfloat16 for `Kernels.bf16Linear`.
    func packedBF16(rows: Int, columns: Int) -> Weights {
        switch self {
        case .float(let values): .packed(PackedBF16(.float(values.pointer), rows: rows, columns: columns))
        case .half(let values): .packed(PackedBF16(.half(values.pointer, values.format), rows: rows, columns: columns))
        case .packed: self
        }
    }

    /// The format a 16-bit tensor keeps, `nil` for any other dtype.
    static func halfFormat(_ dtype: TensorDType) -> HalfBuffer.Format? {
        switch dtype {
        case .BF16: .bf16
        case .F16: .f16
        default: nil
        }
    }
}

/// A matrix ready for a product: fp32 values, or bfloat16 panels.
enum Operand: @unchecked Sendable {
    case float(UnsafeMutablePointer<Float>)
    case packed(PackedBF16)

    /// `C[m, n] = A[m, k] · W[column0 ..< column0 + n]ᵀ + bias` (+ C when `accumulate`) on the calling thread, for a
    /// weight matrix `W` with `k` columns; `bias` is the bias of column `column0`.
    func linear(
        _ a: UnsafePointer<Float>, lda: Int, column0: Int = 0, bias: UnsafePointer<Float>?,
        _ c: UnsafeMutablePointer<Float>, ldc: Int, m: Int, n: Int, k: Int, accumulate: Bool = false
    ) {
        switch self {
        case .float(let weight):
            Kernels.serialLinear(
                a, lda: lda, weight + column0 * k, ldb: k, bias: bias, c, ldc: ldc, m: m, n: n, k: k,
                accumulate: accumulate)
        case .packed(let weight):
            Kernels.bf16Linear(
                a, lda: lda, weight, column0: column0, bias: bias, c, ldc: ldc, m: m, n: n, accumulate: accumulate)
        }
    }
}

/// The fp32 matrices of one pass's products: a matrix held as fp32 is read where it is; one held in 16 bits is
/// widened into a slot, which the next matrix in that slot overwrites. The feed-forward block reads three matrices at
/// once (slots 0–2); everything else uses slot 0. A slot grows to the largest matrix it has held and lives as long as
/// the pass.
final class WideningScratch {
    private var slots: [FloatBuffer?] = [nil, nil, nil]

    /// `weights` ready for products: fp32 values (widened into `slot` if they are 16-bit), or bfloat16 panels.
    func operand(_ weights: Weights, slot: Int = 0) -> Operand {
        switch weights {
        case .float(let buffer):
            return .float(buffer.pointer)
        case .half(let half):
            if (slots[slot]?.count ?? 0) < half.count { slots[slot] = FloatBuffer(uninitialized: half.count) }
            let buffer = slots[slot]!
            half.widenAll(into: buffer.pointer)
            return .float(buffer.pointer)
        case .packed(let packed):
            return .packed(packed)
        }
    }

    /// Frees every slot (before the vocabulary head, the largest matrix, so the feed-forward's slots are not held
    /// beside it).
    func release() { slots = [nil, nil, nil] }
}

extension BoundModel {
    /// Every buffer of weights once (a tied head is the embedding table; shared layers share buffers), with the
    /// widening scratch each product needs at once.
    private var buffers: (weights: [ObjectIdentifier: Int], scratch: [Int], matrixFormats: Set<String>) {
        var weights: [ObjectIdentifier: Int] = [:]
        var scratch: [Int] = []
        var formats: Set<String> = []
        func add(_ buffer: FloatBuffer?) {
            if let buffer { weights[ObjectIdentifier(buffer)] = buffer.count * 4 }
        }
        func add(_ matrix: Weights) {
            switch matrix {
            case .float(let buffer):
                add(buffer)
                formats.insert("float32")
            case .half(let buffer):
                weights[ObjectIdentifier(buffer)] = buffer.bytes
                formats.insert(buffer.format.rawValue)
            case .packed(let buffer):
                weights[ObjectIdentifier(buffer)] = buffer.bytes
                formats.insert("bf16 panels")
            }
        }
        func add(_ projection: Projection) {
            add(projection.weight)
            add(projection.bias)
            scratch.append(projection.weight.wideningBytes)
        }
        func walk(_ steps: [Step]) {
            for step in steps {
                switch step {
                case .positions(_, let table, _): add(table)
                case .linear(let projection): add(projection)
                case .layerNorm(let gamma, let beta, _, _): add(gamma); add(beta)
                case .rmsNorm(let gamma, _, _): add(gamma)
                case .attention(let w):
                    add(w.qkv)
                    add(w.output)
                    add(w.queryKeyNorm?.query)
                    add(w.queryKeyNorm?.key)
                    switch w.position {
                    case .t5(_, let table): add(table)
                    case .kerple(_, let r1, let r2): add(r1); add(r2)
                    case .fire(_, let f): [f.w1, f.b1, f.w2, f.b2, f.c, f.multiplier].forEach { add($0) }
                    case .none, .rotary, .xpos, .alibi, .sandwich: break
                    }
                case .feedForward(let w):
                    [w.gate, w.up, w.down].compactMap { $0 }.forEach { add($0) }
                    scratch.append([w.gate, w.up, w.down].compactMap { $0?.weight.wideningBytes }.reduce(0, +))
                case .residual(_, let body): walk(body)
                case .parallel(let branches): branches.forEach(walk)
                }
            }
        }
        add(embedding.table)
        walk(body)
        add(head)
        return (weights, scratch, formats)
    }

    var weightBytes: Int { buffers.weights.values.reduce(0, +) }

    var wideningBytes: Int { buffers.scratch.max() ?? 0 }

    /// The formats the projection and embedding matrices are held in, 16-bit first: "float32", "bf16",
    /// "bf16+float32", …
    var heldPrecision: String {
        let formats = buffers.matrixFormats
        let half = formats.subtracting(["float32"]).sorted()
        return (half + (formats.contains("float32") ? ["float32"] : [])).joined(separator: "+")
    }
}
