import CZstd
import Foundation
import Testing
import TokenData

@Suite("Converters round-trip exactly")
struct ConverterTests {
    func packed(_ scratch: Scratch, _ inputs: [String], _ options: PackOptions) throws -> TokenDataset {
        let output = scratch.path("out-\(UUID().uuidString).tokens.zst")
        try Packer.pack(inputs, output: output, options: options)
        return try TokenDataset(path: output)
    }

    @Test("raw uint16/uint32, llm.c (both magics), NumPy (several dtypes, v1 header)")
    func binaryFormats() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let small = randomTokens(3000, below: 50257, seed: 1).map { UInt16($0) }
        let large = randomTokens(2000, below: 128_256, seed: 2)
        let raw16 = try scratch.write("train.bin", le(small))
        #expect(try packed(scratch, [raw16], PackOptions(format: .raw)).tokens(in: 0..<3000) == small.map(Int32.init))
        let raw32 = try scratch.write("big.bin", le(large))
        let big = try packed(scratch, [raw32], PackOptions(format: .raw, dtype: .uint32))
        #expect(try big.tokens(in: 0..<2000) == large.map { Int32($0) })

        func llmc(_ magic: Int32, _ payload: [UInt8], _ count: Int) -> [UInt8] {
            var header = [Int32](repeating: 0, count: 256)
            header[0] = magic; header[1] = magic == 20240520 ? 1 : 7; header[2] = Int32(count)
            return le(header) + payload
        }
        let gpt2 = try scratch.write("gpt2.bin", llmc(20240520, le(small), small.count))
        #expect(TokenSourceFormat.guess(gpt2) == .llmc)
        #expect(try packed(scratch, [gpt2], PackOptions(format: .llmc)).tokens(in: 0..<3000) == small.map(Int32.init))
        let llama = try scratch.write("llama.bin", llmc(20240801, le(large), large.count))
        #expect(
            try packed(scratch, [llama], PackOptions(format: .llmc, dtype: .uint32)).tokens(in: 0..<2000)
                == large.map { Int32($0) })
        #expect { try packed(scratch, [llama], PackOptions(format: .llmc)) } throws: {
            "\($0)".contains("--dtype uint32")
        }
        let tagged = try packed(
            scratch, [raw16], PackOptions(format: .raw, tokenizer: "gpt2", tokenizerHash: "sha256:abc"))
        #expect(tagged.metadata.tokenizer == "gpt2" && tagged.metadata.tokenizerHash == "sha256:abc")
        let lying = try scratch.write("lying.bin", llmc(20240520, le(small), small.count + 1))
        #expect { try packed(scratch, [lying], PackOptions(format: .llmc)) } throws: { "\($0)".contains("lying.bin") }

        func npy(_ descr: String, _ shape: String, _ payload: [UInt8]) -> [UInt8] {
            var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }"
            while (10 + header.count + 1) % 64 != 0 { header += " " }
            header += "\n"
            return [0x93] + Array("NUMPY".utf8) + [1, 0] + le([UInt16(header.count)]) + Array(header.utf8) + payload
        }
        let values = small.prefix(1000).map { Int32($0) }
        let i4 = try scratch.write("a.npy", npy("<i4", "(1000,)", le(values)))
        #expect(try packed(scratch, [i4], PackOptions(format: .npy)).tokens(in: 0..<1000) == values)
        let u2 = try scratch.write("b.npy", npy("<u2", "(10, 100)", le(small.prefix(1000).map { $0 })))
        #expect(try packed(scratch, [u2], PackOptions(format: .npy)).tokens(in: 0..<1000) == values)
        let i8 = try scratch.write("c.npy", npy("<i8", "(1000,)", le(values.map { Int64($0) })))
        #expect(try packed(scratch, [i8], PackOptions(format: .npy)).tokens(in: 0..<1000) == values)
        let negative = try scratch.write("d.npy", npy("<i4", "(2,)", le([Int32(5), -1])))
        #expect { try packed(scratch, [negative], PackOptions(format: .npy)) } throws: { "\($0)".contains("-1") }
        let floats = try scratch.write("e.npy", npy("<f4", "(2,)", le([UInt32(0), 0])))
        #expect { try packed(scratch, [floats], PackOptions(format: .npy)) } throws: { "\($0)".contains("<f4") }
    }

    @Test("Megatron .idx/.bin: documents over sequences")
    func megatron() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let sequences: [[UInt16]] = [[1, 2, 3], [4, 5], [6, 7, 8, 9], [10]]
        var bin: [UInt8] = []
        var pointers: [Int64] = []
        for sequence in sequences { pointers.append(Int64(bin.count)); bin += le(sequence) }
        let documentIndices: [Int64] = [0, 2, 3, 4]  // documents: seq 0–1, seq 2, seq 3
        var idx = Array("MMIDIDX".utf8) + [0, 0] + le([UInt64(1)]) + [8]
        idx += le([UInt64(sequences.count)]) + le([UInt64(documentIndices.count)])
        idx += le(sequences.map { Int32($0.count) }) + le(pointers) + le(documentIndices)
        _ = try scratch.write("corpus_text_document.bin", bin)
        let index = try scratch.write("corpus_text_document.idx", idx)
        #expect(TokenSourceFormat.guess(index) == .megatron)
        let dataset = try packed(scratch, [index], PackOptions(format: .megatron))
        #expect(try dataset.tokens(in: 0..<10) == Array(1...10))
        #expect(dataset.documentStarts == [0, 5, 9])
        var broken = idx
        broken[9] = 2
        let bad = try scratch.write("broken.idx", broken)
        _ = try scratch.write("broken.bin", bin)
        #expect { try packed(scratch, [bad], PackOptions(format: .megatron)) } throws: { "\($0)".contains("version") }
    }

    @Test("Text files and JSON lines (plain and .zst) as bytes, with an end-of-document token")
    func text() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let a = try scratch.write("a.txt", Array("In the beginning".utf8))
        let b = try scratch.write("b.txt", Array("Ünïcode ✓".utf8))
        let dataset = try packed(scratch, [a, b], PackOptions(format: .text, endOfDocument: 256))
        let first: [Int32] = Array("In the beginning".utf8).map(Int32.init)
        let second: [Int32] = Array("Ünïcode ✓".utf8).map(Int32.init)
        let expected: [Int32] = first + [256] + second + [256]
        #expect(try dataset.tokens(in: 0..<dataset.count) == expected)
        #expect(dataset.documentStarts == [0, 17])
        #expect(dataset.metadata.vocabularySize == 257 && dataset.metadata.tokenizer == "bytes")

        let lines = "{\"text\": \"first doc\", \"meta\": {\"pile_set_name\": \"x\"}}\n\n{\"text\": \"second\"}\n"
        let jsonl = try scratch.write("docs.jsonl", Array(lines.utf8))
        let fromLines = try packed(scratch, [jsonl], PackOptions(format: .jsonl))
        #expect(try fromLines.tokens(in: 0..<fromLines.count) == Array("first docsecond".utf8).map(Int32.init))
        #expect(fromLines.documentStarts == [0, 9])
        let source = Array(lines.utf8)
        var compressed = [UInt8](repeating: 0, count: ZSTD_compressBound(source.count))
        let size = ZSTD_compress(&compressed, compressed.count, source, source.count, 3)
        let zst = try scratch.write("docs.jsonl.zst", Array(compressed.prefix(size)))
        let fromZst = try packed(scratch, [zst], PackOptions(format: .jsonl))
        #expect(try fromZst.tokens(in: 0..<fromZst.count) == Array("first docsecond".utf8).map(Int32.init))
        let bad = try scratch.write("bad.jsonl", Array("{\"text\": 3}\n".utf8))
        #expect { try packed(scratch, [bad], PackOptions(format: .jsonl)) } throws: { "\($0)".contains("line 1") }
    }
}
