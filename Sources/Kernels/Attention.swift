import CKernels
import Foundation

/// Errors of the kernels: the only thing that can go wrong inside them is memory.
public enum KernelError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A kernel's scratch could not be allocated.
    case outOfMemory(what: String, bytes: Int)

    public var description: String {
        switch self {
        case .outOfMemory(let what, let bytes):
            "out of memory: \(what) needed \(bytes) bytes more; use a shorter length or fewer --threads"
        }
    }
}

/// The additive logit bias of one attention layer, as tables the fused kernel reads per tile.
public enum AttentionBiasTables: Sendable {
    /// No bias.
    case none
    /// `values[h * length + d]`: the bias of head `h` at distance `d = i − j` (ALiBi, T5, KERPLE, Sandwich).
    case distance(FloatBuffer)
    /// FIRE: `mlp(logDistance[i − j] · inverseNormalizer[i])` per head.
    case fire(FireTables)
}

/// Precomputed inputs of FIRE's bias MLP for one layer and length.
public struct FireTables: Sendable {
    /// `ln(|c|·d + 1)` for `d = 0..<length`.
    public var logDistance: FloatBuffer
    /// `1 / (ln(|c|·max(L, i) + 1) + ε)` for `i = 0..<length`.
    public var inverseNormalizer: FloatBuffer
    /// First layer `[hidden]` weights and biases.
    public var w1: FloatBuffer, b1: FloatBuffer
    /// Second layer `[heads, hidden]` weights and `[heads]` biases.
    public var w2: FloatBuffer, b2: FloatBuffer
    /// Hidden width.
    public var hidden: Int

    public init(
        logDistance: FloatBuffer, inverseNormalizer: FloatBuffer, w1: FloatBuffer, b1: FloatBuffer,
        w2: FloatBuffer, b2: FloatBuffer, hidden: Int
    ) {
        self.logDistance = logDistance
        self.inverseNormalizer = inverseNormalizer
        self.w1 = w1
        self.b1 = b1
        self.w2 = w2
        self.b2 = b2
        self.hidden = hidden
    }
}

/// Shape of one fused attention call.
public struct AttentionShape: Sendable {
    /// Sequence length `T`.
    public var length: Int
    /// Query heads.
    public var heads: Int
    /// Key/value heads (a divisor of `heads`).
    public var kvHeads: Int
    /// Head width.
    public var headWidth: Int
    /// Multiplier of `q·k`.
    public var scale: Float
    /// Sliding window, or `nil`.
    public var window: Int?
    /// Soft cap of the scaled scores (`cap · tanh(s / cap)`), or `nil`.
    public var softcap: Float?
    /// Whether the full tiles' products take bfloat16 operands (`--precision bf16`; needs `hasBF16Products`).
    public var bf16: Bool

    public init(
        length: Int, heads: Int, kvHeads: Int, headWidth: Int, scale: Float, window: Int?, softcap: Float? = nil,
        bf16: Bool = false
    ) {
        precondition(!bf16 || Kernels.hasBF16Products, "bf16 attention on a CPU without AVX512-BF16")
        self.bf16 = bf16
        self.length = length
        self.heads = heads
        self.kvHeads = kvHeads
        self.headWidth = headWidth
        self.scale = scale
        self.window = window
        self.softcap = softcap
    }
}

extension Kernels {
    /// Rows of queries one work item handles; small enough to balance the causal triangle across cores.
    static let attentionRowsPerItem = 128

    /// Causal multi-head attention, tiled with an online softmax: memory O(T·width), never a T×T matrix.
    ///
    /// Head `h` of query row `t` is `q[t·qStride + h·hs ..< +hs]`; its key/value head is `h / (heads / kvHeads)`
    /// at `k[t·kStride + g·hs]`, `v[t·vStride + g·hs]`. The result goes to `out[t·outStride + h·hs]`.
    public static func attention(
        q: UnsafePointer<Float>, qStride: Int, k: UnsafePointer<Float>, kStride: Int, v: UnsafePointer<Float>,
        vStride: Int,
        out: UnsafeMutablePointer<Float>, outStride: Int, shape: AttentionShape, bias: AttentionBiasTables
    ) throws(KernelError) {
        let blocks = (shape.length + attentionRowsPerItem - 1) / attentionRowsPerItem
        let group = shape.heads / max(shape.kvHeads, 1)
        let pointers = (
            UncheckedPointer(UnsafeMutablePointer(mutating: q)), UncheckedPointer(UnsafeMutablePointer(mutating: k)),
            UncheckedPointer(UnsafeMutablePointer(mutating: v)), UncheckedPointer(out)
        )
        // Each key/value head's keys, transposed into 64-key tiles once (O(T·width) memory), instead of once per
        // query block inside the kernel.
        // Values are copied into one contiguous [T, hs] run per head, so a tile's rows share a few pages.
        let packedPerHead = (shape.length + 63) / 64 * 64 * shape.headWidth
        let packed = FloatBuffer(count: 2 * packedPerHead * max(shape.kvHeads, 1))
        // With a distance bias, what the kernel needs to skip key tiles whose terms are all zero (attention.h): each
        // key tile's largest |k| and each head's largest bias at or beyond every distance, once per layer.
        let tiles = (shape.length + 63) / 64
        let skipping: (norms: FloatBuffer, bounds: FloatBuffer)? = {
            guard case .distance(let table) = bias else { return nil }
            let bounds = FloatBuffer(uninitialized: shape.heads * shape.length)
            let (source, destination) = (UncheckedPointer(table.pointer), UncheckedPointer(bounds.pointer))
            parallelFor(shape.heads) { h in
                ck_suffix_max(
                    source.pointer + h * shape.length, shape.length, destination.pointer + h * shape.length)
            }
            return (FloatBuffer(uninitialized: tiles * max(shape.kvHeads, 1)), bounds)
        }()
        let norms = skipping.map { UncheckedPointer($0.norms.pointer) }
        // bf16: each head's keys and values as bfloat16 pairs (attention.h's full tiles read these).
        let hsPadded = (shape.headWidth + 63) / 64 * 64
        let keyPairsPerHead = tiles * ((shape.headWidth + 1) / 2) * 64
        let valuePairsPerHead = tiles * 64 * hsPadded  // uint16 values
        let pairs: FloatBuffer? =
            shape.bf16
            ? FloatBuffer(uninitialized: (keyPairsPerHead + valuePairsPerHead / 2) * max(shape.kvHeads, 1)) : nil
        let keyPairs = pairs.map {
            UncheckedPointer(UnsafeMutableRawPointer($0.pointer).assumingMemoryBound(to: UInt32.self))
        }
        let valuePairs = pairs.map {
            UncheckedPointer(
                UnsafeMutableRawPointer($0.pointer + keyPairsPerHead * max(shape.kvHeads, 1))
                    .assumingMemoryBound(to: UInt16.self))
        }
        let packedBase = UncheckedPointer(packed.pointer)
        let valuesBase = UncheckedPointer(packed.pointer + packedPerHead * max(shape.kvHeads, 1))
        parallelFor(shape.kvHeads) { g in
            ck_pack_keys(
                pointers.1.pointer + g * shape.headWidth, kStride, shape.length, shape.headWidth,
                packedBase.pointer + g * packedPerHead)
            if let norms {
                ck_key_tile_norms(
                    packedBase.pointer + g * packedPerHead, shape.length, shape.headWidth, norms.pointer + g * tiles)
            }
            let values = valuesBase.pointer + g * packedPerHead
            for t in 0..<shape.length {
                (values + t * shape.headWidth).update(
                    from: pointers.2.pointer + t * vStride + g * shape.headWidth,
                    count: shape.headWidth)
            }
            if let keyPairs, let valuePairs {
                ck_bf16_pack_key_pairs(
                    packedBase.pointer + g * packedPerHead, shape.length, shape.headWidth,
                    keyPairs.pointer + g * keyPairsPerHead)
                ck_bf16_pack_value_pairs(
                    values, shape.headWidth, shape.length, shape.headWidth, valuePairs.pointer + g * valuePairsPerHead)
            }
        }
        // Later blocks hold more keys: hand them out first so the last items to finish are short ones.
        let failed = Failures()
        parallelFor(shape.heads * blocks) { item in
            let block = blocks - 1 - item / shape.heads
            let head = item % shape.heads
            let kvHead = head / group
            var args = ck_attention_args()
            args.length = shape.length
            args.head_width = shape.headWidth
            args.q = UnsafePointer(pointers.0.pointer + head * shape.headWidth)
            args.q_stride = qStride
            args.k_packed = UnsafePointer(packedBase.pointer + kvHead * packedPerHead)
            args.v = UnsafePointer(valuesBase.pointer + kvHead * packedPerHead)
            args.v_stride = shape.headWidth
            args.out = pointers.3.pointer + head * shape.headWidth
            args.out_stride = outStride
            args.scale = shape.scale
            args.window = shape.window ?? 0
            args.softcap = shape.softcap ?? 0
            if let keyPairs, let valuePairs {
                args.bf16 = 1
                args.k_pairs = UnsafePointer(keyPairs.pointer + kvHead * keyPairsPerHead)
                args.v_pairs = UnsafePointer(valuePairs.pointer + kvHead * valuePairsPerHead)
            }
            switch bias {
            case .none:
                args.bias_kind = CK_BIAS_NONE
            case .distance(let table):
                args.bias_kind = CK_BIAS_DISTANCE
                args.distance_bias = UnsafePointer(table.pointer + head * shape.length)
                if let skipping {
                    args.distance_bias_bound = UnsafePointer(skipping.bounds.pointer + head * shape.length)
                    args.key_tile_norms = UnsafePointer(skipping.norms.pointer + kvHead * tiles)
                }
            case .fire(let fire):
                args.bias_kind = CK_BIAS_FIRE
                args.log_distance = UnsafePointer(fire.logDistance.pointer)
                args.inverse_normalizer = UnsafePointer(fire.inverseNormalizer.pointer)
                args.fire_hidden = fire.hidden
                args.fire_w1 = UnsafePointer(fire.w1.pointer)
                args.fire_b1 = UnsafePointer(fire.b1.pointer)
                args.fire_w2 = UnsafePointer(fire.w2.pointer + head * fire.hidden)
                args.fire_b2 = fire.b2.pointer[head]
            }
            let begin = block * attentionRowsPerItem
            let end = min(begin + attentionRowsPerItem, shape.length)
            if ck_attention_rows(&args, begin, end) != 0 { failed.record() }
        }
        withExtendedLifetime((packed, skipping, pairs)) {}
        if failed.count > 0 {
            let hsPadded = (shape.headWidth + 63) / 64 * 64
            throw .outOfMemory(what: "the attention tile scratch", bytes: (64 * 64 + 64 * hsPadded + 384) * 4)
        }
    }
}

/// Counts failures reported from parallel work items.
final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var failures = 0

    func record() { lock.withLock { failures += 1 } }
    var count: Int { lock.withLock { failures } }
}
