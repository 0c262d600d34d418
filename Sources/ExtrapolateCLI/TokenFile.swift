import Foundation
import TokenData

/// Errors reading a token file.
public enum TokenFileError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file could not be opened or read.
    case unreadable(path: String, reason: String)
    /// The file holds fewer tokens than asked for.
    case tooShort(path: String, available: Int, requested: Int)
    /// The byte count is not a multiple of the token width.
    case misaligned(path: String, bytes: Int, width: Int)
    /// A format that is not readable yet.
    case unsupportedFormat(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): "\(path): cannot read: \(reason)"
        case .tooShort(let path, let available, let requested):
            "\(path): holds \(available) tokens after the offset, fewer than the \(requested) requested; lower --length or --offset"
        case .misaligned(let path, let bytes, let width):
            "\(path): \(bytes) bytes is not a whole number of \(width)-byte tokens; check --dtype"
        case .unsupportedFormat(let path, let reason): "\(path): \(reason)"
        }
    }
}

/// Raw little-endian token files (nanoGPT `train.bin`/`val.bin`: uint16; others: uint32), read by range.
public enum TokenFile {
    /// Token widths.
    public enum DType: String, CaseIterable, Sendable {
        case uint16, uint32

        /// Bytes per token.
        public var width: Int { self == .uint16 ? 2 : 4 }
    }

    /// Reads `count` tokens starting at token `offset` (all remaining when `count` is nil) without reading the rest.
    public static func read(path: String, dtype: DType, offset: Int = 0, count: Int?) throws(TokenFileError) -> [Int32] {
        if path.hasSuffix(".tokens.zst") {
            do {
                let dataset = try TokenDataset(path: path)
                let wanted = count ?? max(dataset.count - offset, 0)
                guard offset + wanted <= dataset.count else {
                    throw TokenFileError.tooShort(path: path, available: max(dataset.count - offset, 0), requested: wanted)
                }
                return try dataset.tokens(in: offset..<(offset + wanted))
            } catch let error as TokenFileError {
                throw error
            } catch {
                throw .unsupportedFormat(path: path, reason: "\(error)")
            }
        }
        if path.hasSuffix(".zst") {
            throw .unsupportedFormat(path: path, reason: "plain zstd files are not token datasets; pack them with "
                + "`extrapolate dataset pack`, or pass a raw uint16/uint32 file with --dtype")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "permission denied" : "no such file"
            throw .unreadable(path: path, reason: reason)
        }
        defer { try? handle.close() }
        let bytes: Int
        do { bytes = Int(try handle.seekToEnd()) } catch { throw .unreadable(path: path, reason: "\(error)") }
        guard bytes % dtype.width == 0 else { throw .misaligned(path: path, bytes: bytes, width: dtype.width) }
        let available = max(bytes / dtype.width - offset, 0)
        let wanted = count ?? available
        guard wanted <= available else { throw .tooShort(path: path, available: available, requested: wanted) }
        let data: Data
        do {
            try handle.seek(toOffset: UInt64(offset * dtype.width))
            data = try handle.read(upToCount: wanted * dtype.width) ?? Data()
        } catch { throw .unreadable(path: path, reason: "\(error)") }
        guard data.count == wanted * dtype.width else {
            throw .tooShort(path: path, available: data.count / dtype.width, requested: wanted)
        }
        return data.withUnsafeBytes { raw in
            (0..<wanted).map { index in
                switch dtype {
                case .uint16: Int32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self)))
                case .uint32: Int32(clamping: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * index, as: UInt32.self)))
                }
            }
        }
    }
}
