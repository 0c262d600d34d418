import CZstd
import Dispatch
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A memory-mapped `.tokens.zst` file: random access to any token range, sequential windows, documents.
///
/// Everything read from the file is bounded before use: the seek table must fit the file, frames must tile
/// the data region, each frame must declare exactly its seek-table size, metadata must fit its frame. A data
/// frame is decoded only into a buffer of its declared size, so a frame that decompresses to more is refused.
public final class TokenDataset: @unchecked Sendable {
    public let path: String
    public let metadata: TokenMetadata
    /// Start offset (in tokens) of every document.
    public let documentStarts: [Int]
    /// Total file size in bytes.
    public let fileSize: Int
    /// Compressed bytes of the data frames.
    public let compressedBytes: Int

    struct Frame {
        var offset: Int
        var compressed: Int
        var decompressed: Int
        /// Low 32 bits of XXH64 of the decoded bytes, when the seek table carries checksums.
        var checksum: UInt32?
    }

    let frames: [Frame]
    /// Number of data frames.
    public var frameCount: Int { frames.count }
    private let base: UnsafeMutableRawPointer
    private let cache = FrameCache(capacity: 8)

    /// Token count.
    public var count: Int { metadata.tokenCount }

    /// Opens and validates `path`.
    public init(path: String) throws(TokenDataError) {
        self.path = path
        _ = try regularFileSize(path)
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .unreadable(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
            throw .unreadable(path: path, reason: "not a regular file")
        }
        let size = Int(status.st_size)
        fileSize = size
        guard size >= 17 else {
            throw .corrupt(path: path, offset: 0, reason: "\(size) bytes is too short for a seek table")
        }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw .unreadable(path: path, reason: "mmap failed")
        }
        base = mapped
        let raw = UnsafeRawBufferPointer(start: mapped, count: size)
        do {
            let parsed = try Self.parse(raw, path: path)
            (metadata, documentStarts, frames, compressedBytes) = parsed
        } catch {
            munmap(mapped, size)
            throw error
        }
    }

    deinit { munmap(base, fileSize) }

    private static func parse(
        _ raw: UnsafeRawBufferPointer, path: String
    ) throws(TokenDataError) -> (TokenMetadata, [Int], [Frame], Int) {
        let size = raw.count
        let footer = size - 9
        guard Bytes.readU32(raw, footer + 5) == TokenFormat.seekFooterMagic else {
            throw .corrupt(
                path: path, offset: footer + 5,
                reason: "no seek-table footer (magic 0x8F92EAB1); not a .tokens.zst file or truncated")
        }
        let frameCount = Int(Bytes.readU32(raw, footer))
        let descriptor = raw[footer + 4]
        let entrySize = descriptor & 0x80 != 0 ? 12 : 8
        guard descriptor & 0x7C == 0 else {
            throw .corrupt(path: path, offset: footer + 4, reason: "reserved seek-table bits set")
        }
        guard frameCount <= (size - 17) / entrySize else {
            throw .corrupt(
                path: path, offset: footer,
                reason: "seek table claims \(frameCount) frames, more than the file can hold")
        }
        let tableBytes = frameCount * entrySize + 9
        let tableStart = size - 8 - tableBytes
        guard Bytes.readU32(raw, tableStart) == TokenFormat.seekTableMagic,
            Int(Bytes.readU32(raw, tableStart + 4)) == tableBytes
        else {
            throw .corrupt(path: path, offset: tableStart, reason: "seek-table frame header does not match its footer")
        }
        var frames: [Frame] = []
        var offset = 0
        for index in 0..<frameCount {
            let entry = tableStart + 8 + index * entrySize
            let compressed = Int(Bytes.readU32(raw, entry))
            let decompressed = Int(Bytes.readU32(raw, entry + 4))
            let checksum: UInt32? = entrySize == 12 ? Bytes.readU32(raw, entry + 8) : nil
            guard compressed > 0, offset + compressed <= tableStart else {
                throw .corrupt(path: path, offset: entry, reason: "frame \(index) extends past the data region")
            }
            frames.append(Frame(offset: offset, compressed: compressed, decompressed: decompressed, checksum: checksum))
            offset += compressed
        }
        let dataEnd = offset
        // The metadata frame sits between the data frames and the seek table.
        guard dataEnd + 8 <= tableStart, Bytes.readU32(raw, dataEnd) == TokenFormat.metadataMagic else {
            throw .corrupt(path: path, offset: dataEnd, reason: "missing metadata frame after the data frames")
        }
        let payloadSize = Int(Bytes.readU32(raw, dataEnd + 4))
        guard payloadSize <= TokenFormat.maximumMetadataBytes, dataEnd + 8 + payloadSize == tableStart,
            payloadSize >= 24
        else {
            throw .corrupt(
                path: path, offset: dataEnd + 4,
                reason: "metadata frame size \(payloadSize) does not fit between data and seek table")
        }
        let payload = UnsafeRawBufferPointer(rebasing: raw[(dataEnd + 8)..<tableStart])
        guard Array(payload.prefix(8)) == TokenFormat.metadataTag else {
            throw .corrupt(path: path, offset: dataEnd + 8, reason: "metadata tag XTOKMETA missing")
        }
        let version = Int(Bytes.readU32(payload, 8))
        guard version == TokenFormat.version else {
            throw .corrupt(
                path: path, offset: dataEnd + 16,
                reason: "format version \(version); this build reads version \(TokenFormat.version)")
        }
        let jsonLength = Int(Bytes.readU32(payload, 12))
        guard 16 + jsonLength + 8 <= payload.count else {
            throw .corrupt(
                path: path, offset: dataEnd + 20, reason: "metadata JSON length \(jsonLength) exceeds its frame")
        }
        let metadata: TokenMetadata
        do {
            metadata = try JSONDecoder().decode(TokenMetadata.self, from: Data(payload[16..<(16 + jsonLength)]))
        } catch { throw .corrupt(path: path, offset: dataEnd + 24, reason: "metadata JSON: \(error)") }
        // Counts are checked before any arithmetic uses them (found by fuzzing: a negative count trapped).
        guard (0...(1 << 50)).contains(metadata.tokenCount), (0...(1 << 50)).contains(metadata.documentCount) else {
            throw .corrupt(
                path: path, offset: dataEnd + 24,
                reason: "metadata counts \(metadata.tokenCount) tokens in \(metadata.documentCount) documents")
        }
        var cursor = 16 + jsonLength
        let documents = Bytes.readU64(payload, cursor)
        cursor += 8
        guard documents == UInt64(metadata.documentCount), documents <= UInt64(payload.count - cursor) else {
            throw .corrupt(
                path: path, offset: dataEnd + 8 + cursor - 8,
                reason: "document count disagrees with the metadata or its frame")
        }
        var starts: [Int] = []
        starts.reserveCapacity(Int(documents))
        var position = 0
        for _ in 0..<Int(documents) {
            var delta: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard cursor < payload.count, shift < 63 else {
                    throw .corrupt(path: path, offset: dataEnd + 8 + cursor, reason: "document offsets are truncated")
                }
                let byte = payload[cursor]
                cursor += 1
                delta |= UInt64(byte & 0x7F) << shift
                shift += 7
                if byte & 0x80 == 0 { break }
            }
            guard delta <= UInt64(metadata.tokenCount) else {
                throw .corrupt(path: path, offset: dataEnd + 8 + cursor, reason: "document offset past the end")
            }
            position += Int(delta)
            starts.append(position)
        }
        // Every frame but the last holds exactly tokensPerFrame tokens.
        let width = metadata.dtype.width
        let perFrame = metadata.tokensPerFrame
        guard perFrame > 0, perFrame <= TokenFormat.maximumFrameTokens,
            frames.count == (metadata.tokenCount + perFrame - 1) / perFrame
        else {
            throw .corrupt(
                path: path, offset: dataEnd + 24,
                reason: "\(frames.count) frames cannot hold \(metadata.tokenCount) tokens of \(perFrame) per frame")
        }
        for (index, frame) in frames.enumerated() {
            let expected = min(perFrame, metadata.tokenCount - index * perFrame) * width
            guard frame.decompressed == expected else {
                throw .corrupt(
                    path: path, offset: tableStart + 8 + index * entrySize + 4,
                    reason: "frame \(index) declares \(frame.decompressed) bytes; \(expected) expected")
            }
        }
        return (metadata, starts, frames, dataEnd)
    }

    // MARK: - Decoding

    /// Decodes frame `index` into its raw little-endian bytes, checking size, zstd checksum and seek-table checksum.
    func decode(frame index: Int, context: OpaquePointer) throws(TokenDataError) -> [UInt8] {
        let frame = frames[index]
        let source = UnsafeRawPointer(base) + frame.offset
        let declared = ZSTD_getFrameContentSize(source, frame.compressed)
        guard declared == UInt64(frame.decompressed) else {
            throw .badFrame(
                path: path, frame: index, offset: frame.offset,
                reason:
                    "frame header declares \(declared == ZSTD_CONTENTSIZE_ERROR ? "an invalid size" : "\(declared) bytes"), the seek table \(frame.decompressed)"
            )
        }
        var output = [UInt8](repeating: 0, count: frame.decompressed)
        let produced = output.withUnsafeMutableBytes { destination in
            ZSTD_decompressDCtx(context, destination.baseAddress, destination.count, source, frame.compressed)
        }
        if ZSTD_isError(produced) != 0 {
            throw .badFrame(
                path: path, frame: index, offset: frame.offset,
                reason: "zstd: \(String(cString: ZSTD_getErrorName(produced)))")
        }
        guard produced == frame.decompressed else {
            throw .badFrame(
                path: path, frame: index, offset: frame.offset,
                reason: "decoded \(produced) bytes, \(frame.decompressed) declared")
        }
        let checksum = output.withUnsafeBytes { UInt32(truncatingIfNeeded: XXH64.hash($0)) }
        if let expected = frame.checksum, checksum != expected {
            throw .badFrame(path: path, frame: index, offset: frame.offset, reason: "checksum mismatch")
        }
        return output
    }

    private func frameTokens(_ index: Int, context: OpaquePointer) throws(TokenDataError) -> [Int32] {
        if let cached = cache.get(index) { return cached }
        let bytes = try decode(frame: index, context: context)
        let width = metadata.dtype.width
        let tokens = bytes.withUnsafeBytes { raw in
            (0..<(raw.count / width)).map { i -> Int32 in
                width == 2
                    ? Int32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                    : Int32(clamping: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
            }
        }
        cache.put(index, tokens)
        return tokens
    }

    /// The tokens in `range`, decoding only the frames it touches (in parallel when it spans several).
    public func tokens(in range: Range<Int>) throws(TokenDataError) -> [Int32] {
        guard range.lowerBound >= 0, range.upperBound <= count else {
            throw .outOfRange(path: path, range: range, count: count)
        }
        if range.isEmpty { return [] }
        let perFrame = metadata.tokensPerFrame
        let first = range.lowerBound / perFrame, last = (range.upperBound - 1) / perFrame
        var decoded = [[Int32]](repeating: [], count: last - first + 1)
        var failure: TokenDataError?
        let lock = NSLock()
        let work = { (offset: Int) in
            guard let context = ZSTD_createDCtx() else {
                lock.lock()
                failure =
                    failure
                    ?? .unreadable(
                        path: self.path, reason: "zstd could not allocate a decoding context (out of memory)")
                lock.unlock()
                return
            }
            defer { ZSTD_freeDCtx(context) }
            do throws(TokenDataError) {
                let tokens = try self.frameTokens(first + offset, context: context)
                lock.lock(); decoded[offset] = tokens; lock.unlock()
            } catch {
                // The first frame's error is the one reported; a typed catch (no `as?` through `any Error`).
                lock.lock()
                if failure == nil { failure = error }
                lock.unlock()
            }
        }
        if decoded.count == 1 {
            work(0)
        } else {
            withoutActuallyEscaping(work) { escapable in
                let shared = unsafeBitCast(escapable, to: (@Sendable (Int) -> Void).self)
                DispatchQueue.concurrentPerform(iterations: decoded.count, execute: shared)
            }
        }
        if let failure { throw failure }
        var result: [Int32] = []
        result.reserveCapacity(range.count)
        for (offset, tokens) in decoded.enumerated() {
            let frameStart = (first + offset) * perFrame
            let lower = max(range.lowerBound - frameStart, 0)
            let upper = min(range.upperBound - frameStart, tokens.count)
            result += tokens[lower..<upper]
        }
        return result
    }

    /// Consecutive windows of `length` tokens, `stride` apart (non-overlapping by default), in file order:
    /// `while let window = try windows.next() { … }` or `try windows.all()`. A frame that cannot be decoded is
    /// an error, never the end of the data.
    public func windows(length: Int, stride: Int? = nil) -> WindowReader {
        WindowReader(dataset: self, length: length, stride: stride ?? length)
    }

    /// Decodes every frame and checks sizes, zstd checksums, seek-table checksums and the content checksum.
    /// - Returns: the number of frames checked.
    @discardableResult
    public func verify() throws(TokenDataError) -> Int {
        guard let context = ZSTD_createDCtx() else {
            throw .unreadable(path: path, reason: "zstd context allocation failed")
        }
        defer { ZSTD_freeDCtx(context) }
        var content = XXH64()
        for index in frames.indices {
            let bytes = try decode(frame: index, context: context)
            bytes.withUnsafeBytes { content.update($0) }
        }
        let actual = "xxh64:" + Bytes.hex(content.digest())
        guard actual == metadata.checksum else {
            throw .corrupt(
                path: path, offset: compressedBytes,
                reason: "content checksum \(actual) does not match the metadata's \(metadata.checksum)")
        }
        return frames.count
    }
}

/// Sequential windows over a dataset, read one at a time. Not a `Sequence`: reading a window can fail (a corrupt
/// frame), and a sequence could only end quietly there.
public struct WindowReader {
    let dataset: TokenDataset
    let length: Int
    let stride: Int
    var start = 0

    /// The next window, or nil at the end (a short tail is not returned, nor is anything for a length or stride
    /// below 1).
    /// - Throws: `TokenDataError` naming the file and frame when the window's frames cannot be decoded.
    public mutating func next() throws(TokenDataError) -> [Int32]? {
        guard length > 0, stride > 0, start + length <= dataset.count else { return nil }
        let window = try dataset.tokens(in: start..<(start + length))
        start += stride
        return window
    }

    /// Every remaining window.
    /// - Throws: `TokenDataError` as `next()`.
    public mutating func all() throws(TokenDataError) -> [[Int32]] {
        var windows: [[Int32]] = []
        while let window = try next() { windows.append(window) }
        return windows
    }
}

/// A small thread-safe cache of decoded frames.
final class FrameCache: @unchecked Sendable {
    private var entries: [(Int, [Int32])] = []
    private let capacity: Int
    private let lock = NSLock()

    init(capacity: Int) { self.capacity = capacity }

    func get(_ index: Int) -> [Int32]? {
        lock.lock()
        defer { lock.unlock() }
        guard let position = entries.firstIndex(where: { $0.0 == index }) else { return nil }
        let entry = entries.remove(at: position)
        entries.append(entry)
        return entry.1
    }

    func put(_ index: Int, _ tokens: [Int32]) {
        lock.lock()
        defer { lock.unlock() }
        entries.removeAll { $0.0 == index }
        entries.append((index, tokens))
        if entries.count > capacity { entries.removeFirst() }
    }
}
