import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Element types of the safetensors format.
public enum TensorDType: String, Sendable, Hashable, CaseIterable {
    case BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .BOOL, .U8, .I8, .F8_E5M2, .F8_E4M3: 1
        case .I16, .U16, .F16, .BF16: 2
        case .I32, .U32, .F32: 4
        case .F64, .I64, .U64: 8
        }
    }

    /// Whether the engine can read it as fp32 weights.
    public var isConvertibleToFloat: Bool { [.F32, .F16, .BF16, .F64].contains(self) }
}

/// One tensor's header entry.
public struct TensorInfo: Sendable, Hashable {
    /// Name in the checkpoint.
    public var name: String
    /// Element type.
    public var dtype: TensorDType
    /// Shape (C order).
    public var shape: [Int]
    /// Byte range relative to the start of the data buffer.
    public var dataOffsets: Range<Int>

    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }
}

/// A memory-mapped safetensors file whose header has been fully validated.
///
/// Validation happens before anything is allocated for the data: the header length is bounded, the JSON is
/// well-formed, every dtype is known, every `data_offsets` pair is in bounds, the entries tile the buffer
/// contiguously from 0 without holes or overlaps, each has exactly `count × dtype.size` bytes, and
/// `8 + header + buffer == file length` (a truncated file fails here).
public final class SafetensorsFile: TensorFile, @unchecked Sendable {
    /// The largest header accepted (the reference implementation's limit).
    public static let maximumHeaderBytes = 100_000_000

    /// Path of the file.
    public let path: String
    /// The `__metadata__` map (empty when absent).
    public let metadata: [String: String]
    /// Tensors in data order.
    public let tensors: [TensorInfo]
    /// Tensors by name.
    public let byName: [String: TensorInfo]
    /// Byte offset of the data buffer in the file.
    public let dataStart: Int
    /// Total file length.
    public let fileSize: Int

    private let file: MappedFile

    /// Opens, validates and maps `path`.
    /// - Throws: `CheckpointError` naming the file, tensor and offset of the first problem.
    public init(path: String) throws(CheckpointError) {
        self.path = path
        file = try MappedFile(path: path)
        let size = file.size
        fileSize = size
        guard size >= 8 else { throw .truncated(path: path, expectedBytes: 8, actualBytes: size) }
        let headerLength = file.bytes.loadUnaligned(as: UInt64.self).littleEndian
        guard headerLength <= UInt64(Self.maximumHeaderBytes) else {
            throw .badHeader(
                path: path, offset: 0,
                reason: "header length \(headerLength) exceeds \(Self.maximumHeaderBytes) bytes")
        }
        let headerCount = Int(headerLength)
        guard 8 + headerCount <= size else {
            throw .truncated(path: path, expectedBytes: 8 + headerCount, actualBytes: size)
        }
        let header = Array(UnsafeRawBufferPointer(rebasing: file.bytes[8..<8 + headerCount]))
        dataStart = 8 + headerCount

        let parsed = try Self.parseHeader(header, path: path, bufferLength: size - dataStart)
        metadata = parsed.metadata
        tensors = parsed.tensors
        byName = Dictionary(parsed.tensors.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// The raw bytes of a tensor (valid while `self` lives).
    public func bytes(of info: TensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(
            rebasing: file.bytes[(dataStart + info.dataOffsets.lowerBound)..<(dataStart + info.dataOffsets.upperBound)])
    }

    /// Converts a tensor to fp32 into `destination` (which must hold `info.count` values).
    /// - Throws: `unsupportedDType` for integer, bool and fp8 tensors.
    public func convert(_ info: TensorInfo, into destination: UnsafeMutablePointer<Float>) throws(CheckpointError) {
        let raw = bytes(of: info)
        guard FloatConversion.convert(raw, dtype: info.dtype, count: info.count, into: destination) else {
            throw .unsupportedDType(path: path, tensor: info.name, dtype: info.dtype.rawValue)
        }
        file.release(raw)
    }

    /// Copies a tensor's bytes as stored into `destination` (`info.count × info.dtype.size` bytes).
    public func copyStored(_ info: TensorInfo, into destination: UnsafeMutableRawPointer) throws(CheckpointError) {
        let raw = bytes(of: info)
        if raw.count > 0 { destination.copyMemory(from: raw.baseAddress!, byteCount: raw.count) }
        file.release(raw)
    }

    /// A tensor as fp32 values.
    public func floats(_ name: String) throws(CheckpointError) -> [Float] {
        guard let info = byName[name] else { throw .missingTensor(path: path, tensor: name) }
        guard info.dtype.isConvertibleToFloat else {
            throw .unsupportedDType(path: path, tensor: info.name, dtype: info.dtype.rawValue)
        }
        var failure: CheckpointError?
        let values = [Float](unsafeUninitializedCapacity: info.count) { buffer, initialized in
            guard let address = buffer.baseAddress else { return }
            do throws(CheckpointError) {
                try convert(info, into: address)
                initialized = info.count
            } catch {
                failure = error  // nothing initialised: the array is dropped and the error thrown below
            }
        }
        if let failure { throw failure }
        return values
    }

    // MARK: - Header

    private static func parseHeader(
        _ header: [UInt8], path: String, bufferLength: Int
    ) throws(CheckpointError) -> (metadata: [String: String], tensors: [TensorInfo]) {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(header), options: [])
        } catch {
            throw .badHeader(path: path, offset: 8, reason: "header is not valid JSON (\(error.localizedDescription))")
        }
        guard let entries = object as? [String: Any] else {
            throw .badHeader(path: path, offset: 8, reason: "header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        var tensors: [TensorInfo] = []
        for (name, value) in entries {
            if name == "__metadata__" {
                guard let map = value as? [String: Any] else {
                    throw .badHeader(path: path, offset: 8, reason: "__metadata__ must be an object of strings")
                }
                for (key, item) in map {
                    guard let string = item as? String else {
                        throw .badHeader(
                            path: path, offset: 8, reason: "__metadata__ value of '\(key)' is not a string")
                    }
                    metadata[key] = string
                }
                continue
            }
            tensors.append(try parseTensor(name, value, path: path))
        }
        tensors.sort {
            ($0.dataOffsets.lowerBound, $0.dataOffsets.upperBound, $0.name) < (
                $1.dataOffsets.lowerBound, $1.dataOffsets.upperBound, $1.name
            )
        }
        var expected = 0
        for info in tensors {
            let begin = info.dataOffsets.lowerBound
            if begin < expected {
                throw .badTensor(
                    path: path, tensor: info.name, offset: begin,
                    reason: "overlaps the previous tensor, which ends at \(expected)")
            }
            if begin > expected {
                throw .badTensor(
                    path: path, tensor: info.name, offset: begin,
                    reason: "leaves a hole: the previous tensor ends at \(expected)")
            }
            expected = info.dataOffsets.upperBound
        }
        if expected != bufferLength {
            throw .truncated(
                path: path, expectedBytes: 8 + header.count + expected, actualBytes: 8 + header.count + bufferLength)
        }
        return (metadata, tensors)
    }

    private static func parseTensor(_ name: String, _ value: Any, path: String) throws(CheckpointError) -> TensorInfo {
        guard let entry = value as? [String: Any] else {
            throw .badTensor(path: path, tensor: name, offset: nil, reason: "entry is not an object")
        }
        guard let dtypeName = entry["dtype"] as? String else {
            throw .badTensor(path: path, tensor: name, offset: nil, reason: "missing or non-string 'dtype'")
        }
        guard let dtype = TensorDType(rawValue: dtypeName) else {
            throw .badTensor(
                path: path, tensor: name, offset: nil,
                reason:
                    "unknown dtype '\(dtypeName)'; known: \(TensorDType.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        guard let shapeValues = entry["shape"] as? [Any], let shape = integers(shapeValues) else {
            throw .badTensor(
                path: path, tensor: name, offset: nil, reason: "'shape' must be an array of non-negative integers")
        }
        guard let offsetValues = entry["data_offsets"] as? [Any], offsetValues.count == 2,
            let offsets = integers(offsetValues)
        else {
            throw .badTensor(
                path: path, tensor: name, offset: nil,
                reason: "'data_offsets' must be two non-negative integers [begin, end]")
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin <= end else {
            throw .badTensor(
                path: path, tensor: name, offset: begin, reason: "data_offsets end \(end) is before begin \(begin)")
        }
        var count = 1
        for dimension in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow, product <= Int(Int32.max) * 64 else {
                throw .badTensor(path: path, tensor: name, offset: begin, reason: "shape \(shape) is impossibly large")
            }
            count = product
        }
        guard end - begin == count * dtype.size else {
            throw .badTensor(
                path: path, tensor: name, offset: begin,
                reason: "holds \(end - begin) bytes but \(dtype.rawValue) \(shape) needs \(count * dtype.size)")
        }
        return TensorInfo(name: name, dtype: dtype, shape: shape, dataOffsets: begin..<end)
    }

    /// Non-negative integers from JSON numbers, or nil if any is not one.
    private static func integers(_ values: [Any]) -> [Int]? {
        var result: [Int] = []
        for value in values {
            guard let number = value as? NSNumber else { return nil }
            let double = number.doubleValue
            guard double >= 0, double == double.rounded(), double < 9.0e15 else { return nil }
            result.append(number.intValue)
        }
        return result
    }
}
