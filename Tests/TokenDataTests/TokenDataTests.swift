import CZstd
import Foundation
import Testing
import TestSupport
import TokenData

struct Scratch {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("tokens-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        try Data(bytes).write(to: url.appendingPathComponent(name))
        return path(name)
    }
    func remove() { try? FileManager.default.removeItem(at: url) }
}

func le<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    values.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) }
}

func randomTokens(_ count: Int, below limit: UInt32, seed: UInt64) -> [UInt32] {
    var generator = TestRandom(seed: seed)
    return generator.tokens(count, below: limit)
}

@Suite("XXH64")
struct XXH64Tests {
    @Test("Reference vectors (python-xxhash), one-shot and streamed in odd pieces")
    func vectors() {
        let cases: [([UInt8], UInt64)] = [
            ([], 0xEF46_DB37_51D8_E999), (Array("a".utf8), 0xD24E_C4F1_A98C_6E5B),
            (Array("abc".utf8), 0x44BC_2CF5_AD77_0999),
            (Array(String(repeating: "0123456789", count: 10).utf8), 0xF80E_7B96_315A_FFFA),
        ]
        for (bytes, expected) in cases {
            #expect(bytes.withUnsafeBytes { XXH64.hash($0) } == expected)
            var streamed = XXH64()
            var index = 0
            for size in [1, 3, 7, 31, 33, 200] where index < bytes.count {
                let end = min(index + size, bytes.count)
                bytes[index..<end].withUnsafeBytes { streamed.update($0) }
                index = end
            }
            #expect(streamed.digest() == expected)
        }
    }
}

@Suite("The .tokens.zst format")
struct TokenFormatTests {
    @Test("Round trip: random ranges, windows, documents, both widths", arguments: [TokenDType.uint16, .uint32])
    func roundTrip(_ dtype: TokenDType) throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let tokens = randomTokens(10_007, below: dtype == .uint16 ? 65535 : 1 << 31, seed: 3)
        let writer = try TokenWriter(path: scratch.path("a.tokens.zst"), dtype: dtype, tokensPerFrame: 1000, level: 3)
        for (index, start) in [0, 17, 5000, 9999].enumerated() {
            let end = [17, 5000, 9999, tokens.count][index]
            writer.beginDocument()
            try writer.append(tokens[start..<end])
        }
        let written = try writer.finish(source: ["test": "roundTrip"])
        #expect(written.tokenCount == tokens.count && written.documentCount == 4)
        let dataset = try TokenDataset(path: scratch.path("a.tokens.zst"))
        #expect(dataset.count == tokens.count)
        #expect(dataset.documentStarts == [0, 17, 5000, 9999])
        #expect(dataset.metadata.source["test"] == "roundTrip")
        #expect(dataset.frameCount == 11)
        #expect(try dataset.tokens(in: 0..<tokens.count) == tokens.map { Int32(clamping: $0) })
        for range in [0..<1, 999..<1001, 3456..<7890, 10_000..<10_007, 5..<5] {
            #expect(try dataset.tokens(in: range) == tokens[range].map { Int32(clamping: $0) })
        }
        #expect(throws: TokenDataError.self) { try dataset.tokens(in: 10_000..<10_008) }
        var reader = dataset.windows(length: 3000)
        let windows = try reader.all()
        #expect(windows.count == 3 && windows[2] == tokens[6000..<9000].map { Int32(clamping: $0) })
        var overlapping = dataset.windows(length: 4000, stride: 2000)
        #expect(try overlapping.all().count == 4)
        #expect(try dataset.verify() == 11)
    }

    @Test("The zstd command-line tool decodes the file to the raw little-endian tokens")
    func zstdCLI() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let tokens = randomTokens(5000, below: 300, seed: 9)
        let writer = try TokenWriter(path: scratch.path("b.tokens.zst"), dtype: .uint16, tokensPerFrame: 777)
        try writer.append(tokens)
        try writer.finish()
        let tool = ["/usr/bin/zstd", "/usr/local/bin/zstd"].first { FileManager.default.isExecutableFile(atPath: $0) }
        try #require(tool != nil, "the zstd CLI is needed for this test: apt-get install zstd")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool!)
        process.arguments = ["-dc", scratch.path("b.tokens.zst")]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(Array(output) == le(tokens.map { UInt16($0) }))
    }

    @Test("Corrupting any byte of a data frame is caught by verify, naming the frame")
    func corruption() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let tokens = randomTokens(600, below: 50, seed: 5)
        let writer = try TokenWriter(path: scratch.path("c.tokens.zst"), dtype: .uint16, tokensPerFrame: 256, level: 1)
        try writer.append(tokens)
        try writer.finish()
        let good = try [UInt8](Data(contentsOf: URL(fileURLWithPath: scratch.path("c.tokens.zst"))))
        let dataBytes = try TokenDataset(path: scratch.path("c.tokens.zst")).compressedBytes
        var caught = 0
        for index in 0..<dataBytes {
            var bytes = good
            bytes[index] ^= 0x5A
            let path = try scratch.write("bad.tokens.zst", bytes)
            do {
                let dataset = try TokenDataset(path: path)
                try dataset.verify()
                Issue.record("flipping byte \(index) went unnoticed")
            } catch {
                caught += 1
                #expect("\(error)".contains("bad.tokens.zst"))
                if case .badFrame(_, let frame, _, _) = error { #expect(frame >= 0 && frame < 3) }
            }
        }
        #expect(caught == dataBytes)
        // Reading windows through a corrupt frame is an error naming it, not a shorter dataset.
        var bytes = good
        bytes[dataBytes - 5] ^= 0x5A
        let path = try scratch.write("bad.tokens.zst", bytes)
        var reader = try TokenDataset(path: path).windows(length: 100)
        var read = 0
        do {
            while try reader.next() != nil { read += 1 }
            Issue.record("a corrupt last frame ended the windows quietly after \(read)")
        } catch {
            #expect("\(error)".contains("bad.tokens.zst") && read < 6)
        }
        for cut in [1, 9, 40, good.count / 2, good.count - 1] {
            let path = try scratch.write("cut.tokens.zst", Array(good.prefix(cut)))
            #expect(throws: TokenDataError.self) { try TokenDataset(path: path) }
        }
    }
}

@Suite("The bundled KJV dataset")
struct BundledDatasetTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Datasets/kjv")

    @Test(
        "Both splits verify, hold byte tokens, and start where the build script says",
        arguments: [
            ("train.tokens.zst", 60, "Genesis 1\n"), ("valid.tokens.zst", 6, "2 Samuel 1\n"),
        ])
    func splits(_ name: String, _ documents: Int, _ opening: String) throws {
        let dataset = try TokenDataset(path: Self.folder.appendingPathComponent(name).path)
        #expect(try dataset.verify() == dataset.frameCount)
        #expect(dataset.metadata.documentCount == documents && dataset.metadata.vocabularySize == 256)
        let head = try dataset.tokens(in: 0..<opening.utf8.count)
        #expect(String(decoding: head.map { UInt8($0) }, as: UTF8.self) == opening)
        let second = dataset.documentStarts[1]
        let text = String(decoding: try dataset.tokens(in: second..<(second + 40)).map { UInt8($0) }, as: UTF8.self)
        #expect(
            text.split(separator: "\n").first?.hasSuffix(" 1") == true,
            "document 1 starts with a chapter heading: \(text)")
    }
}
