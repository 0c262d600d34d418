import Foundation
import Testing
import TestSupport
import TokenData

@testable import ExtrapolateCLI

@Suite("extrapolate dataset")
struct DatasetCommandTests {
    @Test("pack → inspect → verify, and verify names the frame of a corrupted file")
    func packInspectVerify() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dataset-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let text = folder.appendingPathComponent("a.txt")
        try Data(String(repeating: "And God said, Let there be light. ", count: 400).utf8).write(to: text)
        let output = folder.appendingPathComponent("a.tokens.zst").path
        try Extrapolate.Dataset.Pack.parse([text.path, "-o", output, "--tokens-per-frame", "4096", "--eos", "256"])
            .run()
        let dataset = try TokenDataset(path: output)
        #expect(dataset.count == 400 * 34 + 1 && dataset.metadata.vocabularySize == 257 && dataset.frameCount == 4)
        try Extrapolate.Dataset.Inspect.parse([output, "--json"]).run()
        try Extrapolate.Dataset.Verify.parse([output]).run()
        var bytes = try Data(contentsOf: URL(fileURLWithPath: output))
        let frame2 = dataset.compressedBytes - 20  // inside the last data frame
        bytes[frame2] ^= 0xFF
        let corrupt = folder.appendingPathComponent("corrupt.tokens.zst").path
        try bytes.write(to: URL(fileURLWithPath: corrupt))
        #expect { try Extrapolate.Dataset.Verify.parse([corrupt]).run() } throws: { "\($0)".contains("frame 3") }
    }

    @Test("Arguments are validated before anything is read")
    func arguments() {
        #expect(throws: (any Error).self) { try Extrapolate.Dataset.Pack.parse(["-o", "x.tokens.zst"]) }
        #expect(throws: (any Error).self) {
            try Extrapolate.Dataset.Pack.parse(["a.txt", "-o", "x", "--from", "parquet"])
        }
        #expect(throws: (any Error).self) {
            try Extrapolate.Dataset.Pack.parse(["a.txt", "-o", "x", "--dtype", "int8"])
        }
        #expect(throws: (any Error).self) { try Extrapolate.Dataset.Pack.parse(["a.txt", "-o", "x", "--level", "40"]) }
        #expect { try Extrapolate.Dataset.Pack.parse(["mystery.dat", "-o", "x.tokens.zst"]).run() } throws: {
            "\($0)".contains("--from")
        }
        // Packing a file onto itself would truncate the input before reading it.
        #expect { try Extrapolate.Dataset.Pack.parse(["a.bin", "-o", "./a.bin"]) } throws: {
            "\($0)".contains("destroy the input")
        }
        let help = Extrapolate.helpMessage(for: Extrapolate.Dataset.Pack.self)
        #expect(help.contains("megatron") && help.contains("llm.c") && help.contains("jsonl"))
    }
}
