import Foundation

/// Reads tokens by range from either kind of token file: a `.tokens.zst` dataset, or a raw little-endian file
/// (nanoGPT's `train.bin`/`val.bin` are uint16; larger vocabularies need uint32).
public enum TokenFile {
    /// Reads `count` tokens starting at token `offset` (all remaining when `count` is nil) without reading the rest.
    /// - Parameter dtype: the width of a raw file; a `.tokens.zst` file says its own.
    /// - Throws: `TokenDataError` naming the file: missing, not a regular file, misaligned, too short, corrupt.
    public static func read(path: String, dtype: TokenDType, offset: Int = 0, count: Int?) throws(TokenDataError)
        -> [Int32]
    {
        if path.hasSuffix(".tokens.zst") {
            let dataset = try TokenDataset(path: path)
            let available = max(dataset.count - offset, 0)
            let wanted = count ?? available
            guard wanted <= available else { throw .tooShort(path: path, available: available, requested: wanted) }
            return try dataset.tokens(in: offset..<(offset + wanted))
        }
        if path.hasSuffix(".zst") {
            throw .badInput(
                path: path,
                reason: "plain zstd files are not token datasets; pack them with "
                    + "`extrapolate dataset pack`, or pass a raw uint16/uint32 file with --dtype")
        }
        let bytes = try regularFileSize(path)
        guard bytes % dtype.width == 0 else { throw .misaligned(path: path, bytes: bytes, width: dtype.width) }
        let available = max(bytes / dtype.width - offset, 0)
        let wanted = count ?? available
        guard wanted <= available else { throw .tooShort(path: path, available: available, requested: wanted) }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw .unreadable(path: path, reason: "permission denied")
        }
        defer { try? handle.close() }  // read-only: closing cannot lose data
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
                case .uint32:
                    Int32(clamping: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * index, as: UInt32.self)))
                }
            }
        }
    }

    /// Tokens in a raw file of `dtype` (its size over the width), or in a `.tokens.zst` dataset.
    public static func count(path: String, dtype: TokenDType) throws(TokenDataError) -> Int {
        if path.hasSuffix(".tokens.zst") { return try TokenDataset(path: path).count }
        let bytes = try regularFileSize(path)
        guard bytes % dtype.width == 0 else { throw .misaligned(path: path, bytes: bytes, width: dtype.width) }
        return bytes / dtype.width
    }
}

extension TokenFile {
    /// `xxh64:<16 hex digits>` of every byte of a raw file (streamed), or a `.tokens.zst` file's recorded checksum:
    /// the identity of the data wherever it is stored.
    public static func checksum(path: String) throws(TokenDataError) -> String {
        if path.hasSuffix(".tokens.zst") { return try TokenDataset(path: path).metadata.checksum }
        _ = try regularFileSize(path)
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw .unreadable(path: path, reason: "permission denied")
        }
        defer { try? handle.close() }  // read-only: closing cannot lose data
        var hash = XXH64()
        do {
            while let chunk = try handle.read(upToCount: 1 << 22), !chunk.isEmpty {
                chunk.withUnsafeBytes { hash.update($0) }
            }
        } catch { throw .unreadable(path: path, reason: "\(error)") }
        return "xxh64:" + Bytes.hex(hash.digest())
    }
}
