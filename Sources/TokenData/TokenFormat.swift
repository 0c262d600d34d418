import Foundation

/// Constants of the `.tokens.zst` layout (`Docs/token-format.md`).
public enum TokenFormat {
    /// Format version written into the metadata.
    public static let version = 1
    /// Magic of the metadata skippable frame (zstd skippable range 0x184D2A50–5F).
    public static let metadataMagic: UInt32 = 0x184D_2A5B
    /// Magic of the seek-table skippable frame (zstd seekable format).
    public static let seekTableMagic: UInt32 = 0x184D_2A5E
    /// Magic closing the seek table (zstd seekable format).
    public static let seekFooterMagic: UInt32 = 0x8F92_EAB1
    /// First bytes of the metadata payload.
    public static let metadataTag = Array("XTOKMETA".utf8)
    /// Default tokens per frame: 64 Ki tokens (128 KiB of uint16) decode in well under a millisecond.
    public static let defaultTokensPerFrame = 65536
    /// Bounds on what a reader accepts before allocating.
    public static let maximumMetadataBytes = 256 << 20
    public static let maximumFrameTokens = 1 << 26
}

/// Token width on disk.
public enum TokenDType: String, Sendable, Hashable, Codable, CaseIterable {
    case uint16, uint32

    /// Bytes per token.
    public var width: Int { self == .uint16 ? 2 : 4 }
    /// Largest token value.
    public var maximum: UInt32 { self == .uint16 ? UInt32(UInt16.max) : UInt32.max }
}

/// The metadata a `.tokens.zst` file carries (JSON in its metadata frame).
public struct TokenMetadata: Sendable, Hashable, Codable {
    /// `"extrapolate-tokens"`.
    public var format: String = "extrapolate-tokens"
    /// Format version (1).
    public var version: Int = TokenFormat.version
    /// Token width.
    public var dtype: TokenDType
    /// Vocabulary size (every token is below it).
    public var vocabularySize: Int
    /// Tokenizer name, if known (`bytes` for byte-level text).
    public var tokenizer: String?
    /// A hash identifying the tokenizer (e.g. of its vocabulary file), if known.
    public var tokenizerHash: String?
    /// Number of tokens.
    public var tokenCount: Int
    /// Tokens per data frame (the last frame may hold fewer).
    public var tokensPerFrame: Int
    /// Number of documents (start offsets are stored after the JSON).
    public var documentCount: Int
    /// `xxh64:<16 hex digits>` of all token bytes, little-endian, in order.
    public var checksum: String
    /// Where the tokens came from: converter, input files, options.
    public var source: [String: String]
    /// When the file was written (ISO 8601).
    public var created: String
}

/// Errors reading or writing token datasets; each names the file and where in it.
public enum TokenDataError: Error, Sendable, Hashable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    /// The structure is wrong at a byte offset.
    case corrupt(path: String, offset: Int, reason: String)
    /// A data frame fails to decode or its checksum does not match.
    case badFrame(path: String, frame: Int, offset: Int, reason: String)
    /// A token range outside the file.
    case outOfRange(path: String, range: Range<Int>, count: Int)
    /// Input for a converter is malformed.
    case badInput(path: String, reason: String)
    /// Writing failed.
    case writeFailed(path: String, reason: String)
    /// The file holds fewer tokens than asked for.
    case tooShort(path: String, available: Int, requested: Int)
    /// A raw file's byte count is not a multiple of the token width.
    case misaligned(path: String, bytes: Int, width: Int)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): "\(path): cannot read: \(reason)"
        case .corrupt(let path, let offset, let reason): "\(path): corrupt at byte \(offset): \(reason)"
        case .badFrame(let path, let frame, let offset, let reason):
            "\(path): frame \(frame) (byte \(offset)): \(reason)"
        case .outOfRange(let path, let range, let count):
            "\(path): tokens \(range.lowerBound)..<\(range.upperBound) requested but the file holds \(count)"
        case .badInput(let path, let reason): "\(path): \(reason)"
        case .writeFailed(let path, let reason): "\(path): cannot write: \(reason)"
        case .tooShort(let path, let available, let requested):
            "\(path): holds \(available) tokens after the offset, fewer than the \(requested) requested; lower --length or --offset"
        case .misaligned(let path, let bytes, let width):
            "\(path): \(bytes) bytes is not a whole number of \(width)-byte tokens; check --dtype"
        }
    }
}

/// Checks that `path` is a regular file before anything opens it: opening a FIFO (a named pipe) or a device for
/// reading blocks until a writer appears, which would hang a command or the daemon instead of failing.
/// - Returns: the file's size in bytes.
public func regularFileSize(_ path: String) throws(TokenDataError) -> Int {
    var status = stat()
    guard stat(path, &status) == 0 else { throw .unreadable(path: path, reason: String(cString: strerror(errno))) }
    guard (status.st_mode & S_IFMT) == S_IFREG else {
        throw .unreadable(
            path: path, reason: "not a regular file (a pipe, device or folder); write the tokens to a file first")
    }
    return Int(status.st_size)
}

/// Little-endian helpers over raw bytes.
enum Bytes {
    static func u32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
    static func u64(_ value: UInt64) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
    static func readU32(_ raw: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
        UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
    static func readU64(_ raw: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
        UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }
    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
