import Foundation

/// The entries of a zip archive as `torch.save` writes it: stored (uncompressed) entries, found through the central
/// directory (zip64 when the file or an entry passes 4 GiB). Every offset and length read from the file is checked
/// against the file's size before use; a file whose central directory is missing (still being written) is
/// `truncated`.
package struct ZipDirectory {
    struct Entry: Hashable {
        var name: String
        /// Where the entry's bytes start in the file, and how many there are.
        var dataOffset: Int
        var size: Int
        /// 0: stored. Anything else (deflate) is refused when the entry is read.
        var method: Int
    }

    let entries: [String: Entry]

    /// The most entries accepted (a torch archive has one per storage plus a handful).
    static let maximumEntries = 1 << 20

    /// Reads the directory of the zip in `bytes` (the whole file).
    package init(_ bytes: UnsafeRawBufferPointer, path: String) throws(CheckpointError) {
        let size = bytes.count
        func u16(_ offset: Int) -> Int {
            Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self).littleEndian)
        }
        func u32(_ offset: Int) -> Int {
            Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian)
        }
        // An 8-byte offset or length: nil past the file's size, which no offset or length of a valid archive is (so
        // the sums below, of values at most the size plus small constants, cannot overflow).
        func u64(_ offset: Int) -> Int? {
            let value = bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self).littleEndian
            return value <= UInt64(size) ? Int(value) : nil
        }
        // The end-of-central-directory record: the last 22 bytes, or earlier by a comment of up to 64 KiB.
        var end: Int?
        var candidate = size - 22
        while candidate >= 0, candidate >= size - 22 - 0xFFFF {
            if u32(candidate) == 0x0605_4b50 {
                end = candidate
                break
            }
            candidate -= 1
        }
        guard let end else {
            throw .truncated(path: path, expectedBytes: size + 22, actualBytes: size)
        }
        var count = u16(end + 10)
        var directorySize = u32(end + 12)
        var directoryOffset = u32(end + 16)
        // Zip64: a locator 20 bytes before, pointing at the zip64 end record.
        if end >= 20, u32(end - 20) == 0x0706_4b50, let recordOffset = u64(end - 20 + 8) {
            guard recordOffset >= 0, recordOffset + 56 <= size, u32(recordOffset) == 0x0606_4b50,
                let entries = u64(recordOffset + 32), let length = u64(recordOffset + 40),
                let offset = u64(recordOffset + 48)
            else {
                throw .badHeader(path: path, offset: end - 20, reason: "the zip64 end record is malformed")
            }
            (count, directorySize, directoryOffset) = (entries, length, offset)
        }
        guard count <= Self.maximumEntries, directoryOffset >= 0, directorySize >= 0,
            directoryOffset + directorySize <= end
        else {
            throw .badHeader(
                path: path, offset: end,
                reason: "the zip's central directory (\(count) entries at \(directoryOffset)) is outside the file")
        }
        var entries: [String: Entry] = [:]
        var cursor = directoryOffset
        for _ in 0..<count {
            guard cursor + 46 <= directoryOffset + directorySize, u32(cursor) == 0x0201_4b50 else {
                throw .badHeader(path: path, offset: cursor, reason: "a central directory entry is malformed")
            }
            let method = u16(cursor + 10)
            var compressed = u32(cursor + 20)
            var uncompressed = u32(cursor + 24)
            let nameLength = u16(cursor + 28), extraLength = u16(cursor + 30), commentLength = u16(cursor + 32)
            var localOffset = u32(cursor + 42)
            let nameStart = cursor + 46
            guard nameStart + nameLength + extraLength + commentLength <= directoryOffset + directorySize else {
                throw .badHeader(path: path, offset: cursor, reason: "a central directory entry overruns it")
            }
            let name = String(
                decoding: UnsafeRawBufferPointer(rebasing: bytes[nameStart..<nameStart + nameLength]), as: UTF8.self)
            // Zip64 extra field: the 0xFFFFFFFF fields, in order, as 8-byte values.
            var extra = nameStart + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd {
                let id = u16(extra), length = u16(extra + 2)
                if id == 0x0001 {
                    var field = extra + 4
                    func next() -> Int? {
                        guard field + 8 <= extra + 4 + length else { return nil }
                        defer { field += 8 }
                        return u64(field)
                    }
                    if uncompressed == 0xFFFF_FFFF, let value = next() { uncompressed = value }
                    if compressed == 0xFFFF_FFFF, let value = next() { compressed = value }
                    if localOffset == 0xFFFF_FFFF, let value = next() { localOffset = value }
                }
                extra += 4 + length
            }
            guard localOffset + 30 <= size, u32(localOffset) == 0x0403_4b50 else {
                throw .badHeader(path: path, offset: localOffset, reason: "the local header of '\(name)' is missing")
            }
            let dataOffset = localOffset + 30 + u16(localOffset + 26) + u16(localOffset + 28)
            guard compressed >= 0, dataOffset + compressed <= size else {
                throw .truncated(path: path, expectedBytes: dataOffset + compressed, actualBytes: size)
            }
            if method == 0, compressed != uncompressed {
                throw .badHeader(path: path, offset: cursor, reason: "stored entry '\(name)' has two sizes")
            }
            entries[name] = Entry(name: name, dataOffset: dataOffset, size: compressed, method: method)
            cursor = nameStart + nameLength + extraLength + commentLength
        }
        self.entries = entries
    }

    /// Whether `bytes` start like a zip file.
    static func isZip(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 4 && bytes.loadUnaligned(as: UInt32.self).littleEndian == 0x0403_4b50
    }
}
