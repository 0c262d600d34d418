import CKernels

/// An owned, aligned buffer of 16-bit floating-point values — bfloat16 or IEEE half — kept as a checkpoint stores
/// them. A model's matrices live in these when it is kept at its stored precision; `widen` turns a range into fp32
/// exactly (every 16-bit value is an fp32 value), so a product over widened values is the product over the fp32
/// conversion made at load, bit for bit.
public final class HalfBuffer: @unchecked Sendable {
    /// The two 16-bit formats checkpoints store.
    public enum Format: String, Sendable {
        case bf16
        case f16
    }

    /// Number of values.
    public let count: Int
    /// How the bits are read.
    public let format: Format
    /// The values (64-byte aligned).
    public let pointer: UnsafeMutablePointer<UInt16>

    /// Allocates `count` values without writing them.
    public init(uninitialized count: Int, format: Format) {
        self.count = count
        self.format = format
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 2, alignment: 64)
            .bindMemory(to: UInt16.self, capacity: max(count, 1))
    }

    deinit { pointer.deallocate() }

    /// Bytes held.
    public var bytes: Int { count * 2 }

    /// Widens values `start ..< start + count` into `destination` on the calling thread.
    public func widen(from start: Int, count: Int, into destination: UnsafeMutablePointer<Float>) {
        precondition(start >= 0 && count >= 0 && start + count <= self.count, "widening outside the buffer")
        switch format {
        case .bf16: ck_widen_bf16(pointer + start, destination, count)
        case .f16: ck_widen_f16(pointer + start, destination, count)
        }
    }

    /// Widens every value into `destination` (`count` floats), split between the engine's threads.
    public func widenAll(into destination: UnsafeMutablePointer<Float>) {
        let target = UncheckedPointer(destination)
        Kernels.parallelRows(count, minimumChunk: 1 << 16) { begin, end in
            self.widen(from: begin, count: end - begin, into: target.pointer + begin)
        }
    }
}
