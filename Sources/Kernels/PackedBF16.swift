import CKernels

/// A weight matrix `[rows, columns]` (`nn.Linear`'s `[out, in]`) rounded to bfloat16 and packed for
/// `Kernels.bf16Linear`: panels of 32 rows, the columns in pairs (`ck_bf16_pack`). Built once at load by
/// `--precision bf16`; 2 bytes a value whatever the checkpoint stored.
public final class PackedBF16: @unchecked Sendable {
    public let rows: Int
    public let columns: Int
    /// `ck_bf16_packed_count(rows, columns)` values, 64-byte aligned.
    public let pointer: UnsafeMutablePointer<UInt16>
    public let count: Int

    /// The source of a packing: fp32 values, or 16-bit values as stored.
    public enum Source {
        case float(UnsafePointer<Float>)
        case half(UnsafePointer<UInt16>, HalfBuffer.Format)
    }

    /// Packs `source` (`[rows, columns]`), split between the engine's threads.
    public init(_ source: Source, rows: Int, columns: Int) {
        self.rows = rows
        self.columns = columns
        count = ck_bf16_packed_count(rows, columns)
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 2, alignment: 64)
            .bindMemory(to: UInt16.self, capacity: max(count, 1))
        let (raw, format): (UnsafeRawPointer, Int32) =
            switch source {
            case .float(let values): (UnsafeRawPointer(values), 0)
            case .half(let values, .bf16): (UnsafeRawPointer(values), 1)
            case .half(let values, .f16): (UnsafeRawPointer(values), 2)
            }
        let from = UncheckedPointer(UnsafeMutableRawPointer(mutating: raw).assumingMemoryBound(to: UInt8.self))
        let out = UncheckedPointer(pointer)
        let panels = (rows + 31) / 32
        Kernels.parallelRows(panels, minimumChunk: 4) { begin, end in
            ck_bf16_pack(from.pointer, format, rows, columns, begin * 32, (end - begin) * 32, out.pointer)
        }
    }

    deinit { pointer.deallocate() }

    /// Bytes held.
    public var bytes: Int { count * 2 }
}

extension Kernels {
    /// Whether this CPU runs `bf16Linear` (AVX512-BF16, with the AVX-512 kernel set in use): decided once, as the
    /// kernel set is, instead of asking cpuid at every attention layer of every pass.
    public static let hasBF16Products = ck_bf16_available() != 0

    /// `C[m, n] = A[m, k] · B[column0 ..< column0 + n]ᵀ (+ bias) (+ C when accumulate)` on the calling thread, with A
    /// rounded to bfloat16 and fp32 accumulation: the products of `--precision bf16`. `column0` is a multiple of 32;
    /// `bias` is the bias of column `column0`.
    public static func bf16Linear(
        _ a: UnsafePointer<Float>, lda: Int, _ b: PackedBF16, column0: Int = 0, bias: UnsafePointer<Float>?,
        _ c: UnsafeMutablePointer<Float>, ldc: Int, m: Int, n: Int, accumulate: Bool = false
    ) {
        precondition(column0 % 32 == 0 && column0 + n <= b.rows, "bf16 product outside its packed matrix")
        ck_bf16_linear(a, lda, b.pointer, b.columns, column0, bias, c, ldc, m, n, accumulate ? 1 : 0)
    }
}
