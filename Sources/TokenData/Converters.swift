import CZstd
import Foundation

/// Formats `Packer` reads (`Docs/spec/formats.md` has their byte layouts).
public enum TokenSourceFormat: String, Sendable, CaseIterable {
    /// Raw little-endian tokens, no header (nanoGPT `train.bin`): width from `--dtype`.
    case raw
    /// llm.c `.bin`: 256 int32 header (magic 20240520 uint16 / 20240801 uint32, version, count), then tokens.
    case llmc
    /// Megatron `prefix.idx` + `prefix.bin`.
    case megatron
    /// NumPy `.npy` of integers (1-D, or C-order N-D flattened).
    case npy
    /// UTF-8 text files, one document each, tokenized as bytes (vocabulary 256) or with `PackOptions.textTokenizer`.
    case text
    /// JSON lines (optionally `.zst`) with a `text` field, one document per line, tokenized like `text`.
    case jsonl

    /// The format a file name suggests (`.bin` files are told apart by the llm.c magic).
    public static func guess(_ path: String) -> TokenSourceFormat? {
        if path.hasSuffix(".npy") { return .npy }
        if path.hasSuffix(".idx") { return .megatron }
        if path.hasSuffix(".jsonl") || path.hasSuffix(".jsonl.zst") || path.hasSuffix(".json.zst") { return .jsonl }
        if path.hasSuffix(".txt") { return .text }
        if path.hasSuffix(".bin") {
            // Sniffing the format: a file that cannot be read here is refused by the reader chosen, naming it.
            if let handle = FileHandle(forReadingAtPath: path), let head = try? handle.read(upToCount: 4),
                head.count == 4
            {
                let magic = head.withUnsafeBytes { Int32(littleEndian: $0.loadUnaligned(as: Int32.self)) }
                if magic == 20240520 || magic == 20240801 { return .llmc }
                return FileManager.default.fileExists(atPath: String(path.dropLast(4)) + ".idx") ? .megatron : .raw
            }
        }
        return nil
    }
}

/// How to pack.
public struct PackOptions: Sendable {
    /// Input format.
    public var format: TokenSourceFormat
    /// Token width of the output (and of raw input).
    public var dtype: TokenDType
    /// A token appended after every document (text formats; `nil`: none).
    public var endOfDocument: Int?
    /// Declared vocabulary size (`nil`: 256 for bytes, else one more than the largest token).
    public var vocabularySize: Int?
    /// Tokenizer name recorded in the metadata.
    public var tokenizer: String?
    /// Tokenizer hash recorded in the metadata.
    public var tokenizerHash: String?
    /// The tokenizer for text formats (`nil`: UTF-8 bytes). Its name and hash are recorded instead of `tokenizer`.
    public var textTokenizer: Tokenizer?
    /// Threads that tokenize.
    public var threads: Int = max(ProcessInfo.processInfo.activeProcessorCount, 1)
    public var tokensPerFrame: Int
    public var level: Int

    public init(
        format: TokenSourceFormat, dtype: TokenDType = .uint16, endOfDocument: Int? = nil, vocabularySize: Int? = nil,
        tokenizer: String? = nil, tokenizerHash: String? = nil, tokensPerFrame: Int = TokenFormat.defaultTokensPerFrame,
        level: Int = 9
    ) {
        self.format = format
        self.dtype = dtype
        self.endOfDocument = endOfDocument
        self.vocabularySize = vocabularySize
        self.tokenizer = tokenizer
        self.tokenizerHash = tokenizerHash
        self.tokensPerFrame = tokensPerFrame
        self.level = level
    }
}

/// Converts foreign token files into one `.tokens.zst`.
public enum Packer {
    /// Packs `inputs` (in order) into `output`. `progress(done, total)` is called with input bytes.
    @discardableResult
    public static func pack(
        _ inputs: [String], output: String, options: PackOptions, progress: ((Int, Int) -> Void)? = nil
    ) throws(TokenDataError) -> TokenMetadata {
        let writer = try TokenWriter(
            path: output, dtype: options.dtype, tokensPerFrame: options.tokensPerFrame, level: options.level)
        // Sizes only scale the progress bar; an input that cannot be read fails when it is packed, naming it.
        let total = inputs.reduce(0) {
            $0 + ((try? FileManager.default.attributesOfItem(atPath: $1)[.size] as? Int) ?? 0)
        }
        var done = 0
        let bytesFormat = options.format == .text || options.format == .jsonl
        for input in inputs {
            let report: (Int) -> Void = { progress?(done + $0, total) }
            switch options.format {
            case .raw: try packRaw(input, width: options.dtype.width, into: writer, report)
            case .llmc: try packLLMC(input, into: writer, report)
            case .megatron: try packMegatron(input, into: writer, report)
            case .npy: try packNPY(input, into: writer, report)
            case .text:
                let data = try read(input)
                writer.beginDocument()
                if let tokenizer = options.textTokenizer {
                    let text = String(decoding: data, as: UTF8.self)  // invalid UTF-8 becomes U+FFFD
                    try writer.append(tokenizer.encode(text, threads: options.threads).map(Int.init))
                } else {
                    try writer.append(data)
                }
                if let eos = options.endOfDocument { try writer.append([eos]) }
                report(data.count)
            case .jsonl: try packJSONLines(input, options: options, into: writer, report)
            }
            // Progress only (see `total`).
            done += (try? FileManager.default.attributesOfItem(atPath: input)[.size] as? Int) ?? 0
        }
        var vocabulary = options.vocabularySize
        let tokenizer = bytesFormat ? options.textTokenizer : nil
        if vocabulary == nil, bytesFormat {
            vocabulary = max(tokenizer?.vocabularySize ?? 256, (options.endOfDocument ?? 0) + 1)
        }
        var source = [
            "converter": options.format.rawValue,
            "inputs": inputs.map { ($0 as NSString).lastPathComponent }.joined(separator: ","),
            "endOfDocument": options.endOfDocument.map(String.init) ?? "none",
        ]
        if let tokenizer { source["tokenizerFile"] = tokenizer.path }
        return try writer.finish(
            vocabularySize: vocabulary,
            tokenizer: tokenizer?.name ?? options.tokenizer ?? (bytesFormat ? "bytes" : nil),
            tokenizerHash: tokenizer?.hash ?? options.tokenizerHash, source: source)
    }

    static func read(_ path: String) throws(TokenDataError) -> Data {
        do { return try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw .unreadable(path: path, reason: error.localizedDescription)
        }
    }

    /// Appends `count` little-endian integers of `width` bytes (signed when `signed`) starting at `offset`.
    static func appendIntegers(
        _ data: Data, offset: Int, count: Int, width: Int, signed: Bool, path: String,
        into writer: TokenWriter, _ report: (Int) -> Void
    ) throws(TokenDataError) {
        let chunk = 1 << 20
        var index = 0
        while index < count {
            let n = min(chunk, count - index)
            let values: [Int64] = data.withUnsafeBytes { raw in
                (0..<n).map { k in
                    let at = offset + (index + k) * width
                    switch (width, signed) {
                    case (1, false): return Int64(raw[at])
                    case (1, true): return Int64(Int8(bitPattern: raw[at]))
                    case (2, false):
                        return Int64(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt16.self)))
                    case (2, true):
                        return Int64(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: Int16.self)))
                    case (4, false):
                        return Int64(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
                    case (4, true):
                        return Int64(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: Int32.self)))
                    default: return Int64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: Int64.self))
                    }
                }
            }
            do { try writer.append(values) } catch { throw .badInput(path: path, reason: "\(error)") }
            index += n
            report(offset + index * width)
        }
    }

    static func packRaw(_ path: String, width: Int, into writer: TokenWriter, _ report: (Int) -> Void)
        throws(TokenDataError)
    {
        let data = try read(path)
        guard data.count % width == 0 else {
            throw .badInput(
                path: path, reason: "\(data.count) bytes is not a whole number of \(width)-byte tokens; check --dtype")
        }
        writer.beginDocument()
        try appendIntegers(
            data, offset: 0, count: data.count / width, width: width, signed: false, path: path, into: writer, report)
    }

    static func packLLMC(_ path: String, into writer: TokenWriter, _ report: (Int) -> Void) throws(TokenDataError) {
        let data = try read(path)
        guard data.count >= 1024 else { throw .badInput(path: path, reason: "shorter than llm.c's 1024-byte header") }
        let header = data.withUnsafeBytes { raw in
            (0..<3).map { Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) }
        }
        let width: Int
        switch header[0] {
        case 20240520: width = 2
        case 20240801: width = 4
        default:
            throw .badInput(
                path: path, reason: "llm.c magic \(header[0]) is neither 20240520 (GPT-2) nor 20240801 (Llama 3)")
        }
        let count = header[2]
        guard count >= 0, 1024 + count * width == data.count else {
            throw .badInput(
                path: path,
                reason: "header says \(count) tokens of \(width) bytes but the file has \(data.count - 1024) data bytes"
            )
        }
        writer.beginDocument()
        try appendIntegers(
            data, offset: 1024, count: count, width: width, signed: false, path: path, into: writer, report)
    }

    static func packMegatron(_ input: String, into writer: TokenWriter, _ report: (Int) -> Void) throws(TokenDataError)
    {
        let prefix = input.hasSuffix(".idx") || input.hasSuffix(".bin") ? String(input.dropLast(4)) : input
        let indexPath = prefix + ".idx", binPath = prefix + ".bin"
        let index = try read(indexPath)
        let bin = try read(binPath)
        func u64(_ at: Int) -> Int {
            index.withUnsafeBytes { Int(Int64(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: Int64.self))) }
        }
        guard index.count >= 34, Array(index.prefix(9)) == Array("MMIDIDX".utf8) + [0, 0] else {
            throw .badInput(path: indexPath, reason: "not a Megatron index (magic MMIDIDX\\0\\0)")
        }
        guard u64(9) == 1 else {
            throw .badInput(path: indexPath, reason: "index version \(u64(9)); version 1 is read")
        }
        let code = Int(index[17])
        let types: [Int: (Int, Bool)] = [
            1: (1, false), 2: (1, true), 3: (2, true), 4: (4, true), 5: (8, true), 8: (2, false),
        ]
        guard let (width, signed) = types[code] else {
            throw .badInput(
                path: indexPath,
                reason: "dtype code \(code) is not an integer type (1 u8, 2 i8, 3 i16, 4 i32, 5 i64, 8 u16)")
        }
        let sequences = u64(18), documents = u64(26)
        let lengthsAt = 34, pointersAt = 34 + 4 * sequences, documentsAt = pointersAt + 8 * sequences
        guard sequences >= 0, documents >= 1, sequences < index.count, documents < index.count,
            documentsAt + 8 * documents <= index.count
        else {
            throw .badInput(
                path: indexPath, reason: "\(sequences) sequences and \(documents) document indices do not fit the file")
        }
        let lengths = index.withUnsafeBytes { raw in
            (0..<sequences).map {
                Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: lengthsAt + 4 * $0, as: Int32.self)))
            }
        }
        let pointers = (0..<sequences).map { u64(pointersAt + 8 * $0) }
        let boundaries = (0..<documents).map { u64(documentsAt + 8 * $0) }
        guard boundaries.first == 0, boundaries.last == sequences,
            zip(boundaries, boundaries.dropFirst()).allSatisfy({ $0 <= $1 })
        else {
            throw .badInput(path: indexPath, reason: "document indices must rise from 0 to the sequence count")
        }
        for document in 0..<(documents - 1) {
            writer.beginDocument()
            for sequence in boundaries[document]..<boundaries[document + 1] {
                let (start, length) = (pointers[sequence], lengths[sequence])
                guard start >= 0, length >= 0, start + length * width <= bin.count else {
                    throw .badInput(
                        path: binPath, reason: "sequence \(sequence) at byte \(start) runs past the end of the file")
                }
                try appendIntegers(
                    bin, offset: start, count: length, width: width, signed: signed, path: binPath, into: writer
                ) { _ in }
                report(start + length * width)
            }
        }
    }

    static func packNPY(_ path: String, into writer: TokenWriter, _ report: (Int) -> Void) throws(TokenDataError) {
        let data = try read(path)
        guard data.count >= 10, Array(data.prefix(6)) == [0x93] + Array("NUMPY".utf8) else {
            throw .badInput(path: path, reason: "not a .npy file (magic \\x93NUMPY)")
        }
        let major = Int(data[6])
        let (lengthBytes, start) = major == 1 ? (2, 10) : (4, 12)
        guard data.count >= start else { throw .badInput(path: path, reason: "truncated header") }
        let headerLength = data.withUnsafeBytes { raw in
            lengthBytes == 2
                ? Int(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt16.self)))
                : Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt32.self)))
        }
        guard start + headerLength <= data.count,
            let header = String(data: data[start..<(start + headerLength)], encoding: .ascii)
        else {
            throw .badInput(path: path, reason: "header length \(headerLength) runs past the file")
        }
        func field(_ key: String) -> String? {
            guard let range = header.range(of: "'\(key)':") else { return nil }
            return String(header[range.upperBound...]).trimmingCharacters(in: .whitespaces)
        }
        guard let descr = field("descr")?.split(separator: "'").first.map(String.init) else {
            throw .badInput(path: path, reason: "header has no 'descr'")
        }
        let types: [String: (Int, Bool)] = [
            "|u1": (1, false), "|i1": (1, true), "<u2": (2, false), "<i2": (2, true),
            "<u4": (4, false), "<i4": (4, true), "<i8": (8, true), "<u8": (8, false),
        ]
        guard let (width, signed) = types[descr] else {
            throw .badInput(path: path, reason: "dtype '\(descr)' is not a little-endian integer type")
        }
        if field("fortran_order")?.hasPrefix("True") == true {
            throw .badInput(path: path, reason: "Fortran-order arrays are not read; save with np.ascontiguousarray")
        }
        guard let shapeText = field("shape"), let open = shapeText.firstIndex(of: "("),
            let close = shapeText.firstIndex(of: ")")
        else {
            throw .badInput(path: path, reason: "header has no 'shape'")
        }
        let dims = shapeText[shapeText.index(after: open)..<close].split(separator: ",").compactMap {
            Int($0.trimmingCharacters(in: .whitespaces))
        }
        let count = dims.reduce(1, *)
        let dataStart = start + headerLength
        guard dims.allSatisfy({ $0 >= 0 }), dataStart + count * width == data.count else {
            throw .badInput(
                path: path,
                reason: "shape \(dims) of \(width)-byte values does not match the \(data.count - dataStart) data bytes")
        }
        writer.beginDocument()
        try appendIntegers(
            data, offset: dataStart, count: count, width: width, signed: signed, path: path, into: writer, report)
    }

    static func packJSONLines(
        _ path: String, options: PackOptions, into writer: TokenWriter, _ report: (Int) -> Void
    ) throws(TokenDataError) {
        let data = path.hasSuffix(".zst") ? try decompressStream(try read(path), path: path) : try read(path)
        var lineNumber = 0
        var start = data.startIndex
        // Documents are tokenized in batches spread over the threads, and written in order.
        var batch: [String] = []
        var batchBytes = 0
        func flush() throws(TokenDataError) {
            let encoded: [[Int]] =
                options.textTokenizer.map { tokenizer in
                    tokenizer.encode(documents: batch, threads: options.threads).map { $0.map(Int.init) }
                } ?? batch.map { Array($0.utf8).map(Int.init) }
            for document in encoded {
                writer.beginDocument()
                try writer.append(document)
                if let eos = options.endOfDocument { try writer.append([eos]) }
            }
            batch.removeAll(keepingCapacity: true)
            batchBytes = 0
            report(start - data.startIndex)
        }
        while start < data.endIndex {
            let end = data[start...].firstIndex(of: 0x0A) ?? data.endIndex
            lineNumber += 1
            let line = data[start..<end]
            start = end < data.endIndex ? data.index(after: end) : end
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { continue }
            guard let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any] else {
                throw .badInput(path: path, reason: "line \(lineNumber) is not a JSON object")
            }
            guard let text = object["text"] as? String else {
                throw .badInput(path: path, reason: "line \(lineNumber) has no string field 'text'")
            }
            batch.append(text)
            batchBytes += line.count
            if batchBytes > 16 << 20 || batch.count >= 4096 { try flush() }
        }
        try flush()
    }

    /// Decompresses a whole zstd stream (all frames), bounded by `limit` bytes of output.
    public static func decompressStream(_ data: Data, path: String, limit: Int = 1 << 34) throws(TokenDataError) -> Data
    {
        guard let context = ZSTD_createDStream() else {
            throw .unreadable(path: path, reason: "zstd context allocation failed")
        }
        defer { ZSTD_freeDStream(context) }
        var output = Data()
        let chunk = ZSTD_DStreamOutSize()
        var buffer = [UInt8](repeating: 0, count: chunk)
        var failure: String?
        var last = 0
        data.withUnsafeBytes { raw in
            var input = ZSTD_inBuffer(src: raw.baseAddress, size: raw.count, pos: 0)
            var produced = 0
            repeat {
                produced = buffer.withUnsafeMutableBytes { out in
                    var outBuffer = ZSTD_outBuffer(dst: out.baseAddress, size: chunk, pos: 0)
                    last = ZSTD_decompressStream(context, &outBuffer, &input)
                    return outBuffer.pos
                }
                if ZSTD_isError(last) != 0 { failure = String(cString: ZSTD_getErrorName(last)); return }
                output.append(contentsOf: buffer[0..<produced])
                if output.count > limit { failure = "decompresses to more than \(limit) bytes"; return }
            } while input.pos < input.size || produced == chunk
        }
        if let failure { throw .badInput(path: path, reason: "zstd: \(failure)") }
        if last != 0 { throw .badInput(path: path, reason: "zstd stream is truncated") }
        return output
    }
}
