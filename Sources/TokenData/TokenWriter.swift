import CZstd
import Foundation

/// Writes a `.tokens.zst` file: independent zstd frames of `tokensPerFrame` tokens, the metadata frame,
/// the seek table. Written to `<path>.partial` and renamed at `finish()`, so a reader never sees half a file.
public final class TokenWriter {
    public let path: String
    public let dtype: TokenDType
    public let tokensPerFrame: Int
    private let partialPath: String
    private let handle: FileHandle
    private let context: OpaquePointer
    private var pending: [UInt8] = []
    private var entries: [(compressed: UInt32, decompressed: UInt32, checksum: UInt32)] = []
    private var content = XXH64()
    private var documentStarts: [Int] = []
    private var maximumToken: UInt32 = 0
    public private(set) var count = 0
    private var finished = false

    /// - Parameters:
    ///   - path: the file to create (replaced at `finish()`).
    ///   - dtype: token width.
    ///   - tokensPerFrame: tokens per independent frame.
    ///   - level: zstd level (3 is fast; 19 is small).
    public init(
        path: String, dtype: TokenDType, tokensPerFrame: Int = TokenFormat.defaultTokensPerFrame, level: Int = 9
    ) throws(TokenDataError) {
        guard tokensPerFrame > 0, tokensPerFrame <= TokenFormat.maximumFrameTokens else {
            throw .writeFailed(path: path, reason: "tokens per frame must be in 1…\(TokenFormat.maximumFrameTokens)")
        }
        self.path = path
        self.dtype = dtype
        self.tokensPerFrame = tokensPerFrame
        partialPath = path + ".partial"
        guard FileManager.default.createFile(atPath: partialPath, contents: nil),
            let handle = FileHandle(forWritingAtPath: partialPath)
        else {
            throw .writeFailed(path: path, reason: "cannot create \(partialPath)")
        }
        self.handle = handle
        guard let context = ZSTD_createCCtx() else {
            throw .writeFailed(path: path, reason: "zstd context allocation failed")
        }
        self.context = context
        ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, Int32(level))
        ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1)
        ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, 1)
        pending.reserveCapacity(tokensPerFrame * dtype.width)
    }

    deinit {
        ZSTD_freeCCtx(context)
        if !finished {
            // An abandoned write (an error before `finish`): its partial file is removed so no reader mistakes it
            // for data; a failure to remove it leaves only the `.partial` name, which no reader opens.
            try? handle.close()
            try? FileManager.default.removeItem(atPath: partialPath)
        }
    }

    /// Marks the start of a document at the current position.
    public func beginDocument() {
        if documentStarts.last != count { documentStarts.append(count) }
    }

    /// Appends tokens.
    /// - Throws: if a token does not fit the dtype.
    public func append<C: Collection>(_ tokens: C) throws(TokenDataError) where C.Element: BinaryInteger {
        for token in tokens {
            guard token >= 0, UInt64(token) <= UInt64(dtype.maximum) else {
                let hint = dtype == .uint16 && token > 0 ? "; pack with --dtype uint32" : ""
                throw .writeFailed(
                    path: path, reason: "token \(token) at position \(count) does not fit \(dtype.rawValue)\(hint)")
            }
            let value = UInt32(token)
            maximumToken = max(maximumToken, value)
            switch dtype {
            case .uint16: pending += Bytes.u32(value).prefix(2)
            case .uint32: pending += Bytes.u32(value)
            }
            count += 1
            if pending.count == tokensPerFrame * dtype.width { try flush() }
        }
    }

    private func flush() throws(TokenDataError) {
        guard !pending.isEmpty else { return }
        let bound = ZSTD_compressBound(pending.count)
        var output = [UInt8](repeating: 0, count: bound)
        let written = pending.withUnsafeBytes { source in
            output.withUnsafeMutableBytes { destination in
                ZSTD_compress2(context, destination.baseAddress, bound, source.baseAddress, source.count)
            }
        }
        if ZSTD_isError(written) != 0 {
            throw .writeFailed(path: path, reason: "zstd: \(String(cString: ZSTD_getErrorName(written)))")
        }
        let checksum = pending.withUnsafeBytes { raw -> UInt64 in
            content.update(raw)
            return XXH64.hash(raw)
        }
        try write(Array(output.prefix(written)))
        entries.append((UInt32(written), UInt32(pending.count), UInt32(truncatingIfNeeded: checksum)))
        pending.removeAll(keepingCapacity: true)
    }

    private func write(_ bytes: [UInt8]) throws(TokenDataError) {
        do { try handle.write(contentsOf: Data(bytes)) } catch {
            throw .writeFailed(path: partialPath, reason: error.localizedDescription)
        }
    }

    /// Writes the last frame, the metadata and the seek table, and moves the file into place.
    /// - Parameters:
    ///   - vocabularySize: declared vocabulary (`nil`: one more than the largest token).
    ///   - tokenizer, tokenizerHash, source: provenance recorded in the metadata.
    /// - Returns: the metadata written.
    @discardableResult
    public func finish(
        vocabularySize: Int? = nil, tokenizer: String? = nil, tokenizerHash: String? = nil,
        source: [String: String] = [:]
    ) throws(TokenDataError) -> TokenMetadata {
        try flush()
        let vocabulary = vocabularySize ?? (count == 0 ? 0 : Int(maximumToken) + 1)
        if count > 0, Int(maximumToken) >= vocabulary {
            throw .writeFailed(
                path: path, reason: "token \(maximumToken) is not below the declared vocabulary size \(vocabulary)")
        }
        let formatter = ISO8601DateFormatter()
        let metadata = TokenMetadata(
            dtype: dtype, vocabularySize: vocabulary, tokenizer: tokenizer, tokenizerHash: tokenizerHash,
            tokenCount: count,
            tokensPerFrame: tokensPerFrame, documentCount: documentStarts.count,
            checksum: "xxh64:" + Bytes.hex(content.digest()),
            source: source, created: formatter.string(from: Date()))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json: Data
        do { json = try encoder.encode(metadata) } catch { throw .writeFailed(path: path, reason: "\(error)") }
        var payload =
            TokenFormat.metadataTag + Bytes.u32(UInt32(TokenFormat.version)) + Bytes.u32(UInt32(json.count))
            + Array(json)
        payload += Bytes.u64(UInt64(documentStarts.count))
        var previous = 0
        for start in documentStarts {
            var delta = UInt64(start - previous)
            previous = start
            repeat {
                let byte = UInt8(delta & 0x7F)
                delta >>= 7
                payload.append(delta == 0 ? byte : byte | 0x80)
            } while delta != 0
        }
        try write(Bytes.u32(TokenFormat.metadataMagic) + Bytes.u32(UInt32(payload.count)) + payload)
        var table: [UInt8] = []
        for entry in entries {
            table += Bytes.u32(entry.compressed) + Bytes.u32(entry.decompressed) + Bytes.u32(entry.checksum)
        }
        table += Bytes.u32(UInt32(entries.count)) + [0x80] + Bytes.u32(TokenFormat.seekFooterMagic)
        try write(Bytes.u32(TokenFormat.seekTableMagic) + Bytes.u32(UInt32(table.count)) + table)
        do {
            try handle.synchronize()
            try handle.close()
            if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
            try FileManager.default.moveItem(atPath: partialPath, toPath: path)
        } catch { throw .writeFailed(path: path, reason: error.localizedDescription) }
        finished = true
        return metadata
    }
}
