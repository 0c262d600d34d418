import Engine
import Foundation
import Testing

@testable import ExtrapolateCLI

let modelFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/models")

@Suite("extrapolate score")
struct ScoreTests {
    func tokenFile(_ tokens: [Int], dtype: TokenFile.DType, extra: [UInt8] = []) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tokens-\(UUID().uuidString).bin").path
        var bytes: [UInt8] = []
        for token in tokens {
            switch dtype {
            case .uint16: bytes += withUnsafeBytes(of: UInt16(token).littleEndian, Array.init)
            case .uint32: bytes += withUnsafeBytes(of: UInt32(token).littleEndian, Array.init)
            }
        }
        try Data(bytes + extra).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test("Token files are read by range in either width, and bad ones say why")
    func tokenFiles() throws {
        let tokens = [0, 1, 65535, 300, 7]
        let narrow = try tokenFile(tokens, dtype: .uint16)
        let wide = try tokenFile([70000, 1, 2], dtype: .uint32)
        let odd = try tokenFile(tokens, dtype: .uint16, extra: [1])
        defer { for path in [narrow, wide, odd] { try? FileManager.default.removeItem(atPath: path) } }
        #expect(try TokenFile.read(path: narrow, dtype: .uint16, count: nil) == [0, 1, 65535, 300, 7])
        #expect(try TokenFile.read(path: narrow, dtype: .uint16, offset: 2, count: 2) == [65535, 300])
        #expect(try TokenFile.read(path: wide, dtype: .uint32, count: 3) == [70000, 1, 2])
        #expect(throws: TokenFileError.tooShort(path: narrow, available: 3, requested: 4)) {
            try TokenFile.read(path: narrow, dtype: .uint16, offset: 2, count: 4)
        }
        #expect(throws: TokenFileError.misaligned(path: odd, bytes: 11, width: 2)) { try TokenFile.read(path: odd, dtype: .uint16, count: 1) }
        #expect { try TokenFile.read(path: "/no/such.bin", dtype: .uint16, count: 1) } throws: { "\($0)".contains("no such file") }
        #expect { try TokenFile.read(path: "data.jsonl.zst", dtype: .uint16, count: 1) } throws: { "\($0)".contains("dataset pack") }
        #expect { try TokenFile.read(path: "/no/data.tokens.zst", dtype: .uint16, count: 1) } throws: { "\($0)".contains("/no/data.tokens.zst") }
        let kjv = modelFolder.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Datasets/kjv/valid.tokens.zst").path
        #expect(try TokenFile.read(path: kjv, dtype: .uint32, offset: 2, count: 6) == Array("Samuel".utf8).map(Int32.init))
        #expect { try TokenFile.read(path: kjv, dtype: .uint16, offset: 373_230, count: 7) } throws: { "\($0)".contains("fewer") }
    }

    @Test("Scores a fixture end to end and agrees with the reference mean NLL")
    func endToEnd() throws {
        let folder = modelFolder.appendingPathComponent("llama-yarn").path
        let reference = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: folder + "/reference.json"))) as! [String: Any]
        let tokens = (reference["tokens"] as! [Int])
        let path = try tokenFile(tokens, dtype: .uint16)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let model = try LanguageModel.load(folder)
        let window = try TokenFile.read(path: path, dtype: .uint16, count: tokens.count)
        let result = ScoreResult(checkpoint: folder, architecture: model.architecture.name, architectureHash: "h",
                                 trainedLength: 64, length: window.count, offset: 0, tokens: window,
                                 logprobs: try model.logProbabilities(window), loadSeconds: 0, scoreSeconds: 1)
        let expected = -(reference["logprobs"] as! [Double]).reduce(0, +) / Double(tokens.count - 1)
        #expect(abs(result.meanNLL - expected) < 1e-5)
        let text = result.text(includeTokens: true)
        #expect(text.contains("4.00× trained length") && text.contains("perplexity"))
        #expect(text.split(separator: "\n").count == 1 + tokens.count + 8)  // header, one line per token, summary
        #expect(text.contains("threads         \(result.threads) (OpenBLAS \(result.blasCore) kernels)"))
        let json = try JSONSerialization.jsonObject(with: Data(result.json(includeTokens: true).utf8)) as! [String: Any]
        #expect((json["logprobs"] as! [Any]).count == tokens.count)
        #expect(abs((json["perplexity"] as! Double) - exp(expected)) < 1e-3)
        #expect(json["threads"] as? Int == result.threads && json["blasCore"] as? String == result.blasCore)
        #expect(try Score.parse(["--checkpoint", folder, "--tokens", path, "--length", "64"]).run() == ())
    }

    @Test("Arguments are validated, and model errors reach the user as one line")
    func errors() throws {
        #expect(throws: (any Error).self) { try Score.parse(["--checkpoint", "x", "--tokens", "y", "--length", "1"]) }
        #expect(throws: (any Error).self) { try Score.parse(["--checkpoint", "x", "--tokens", "y", "--dtype", "int8"]) }
        #expect(throws: (any Error).self) { try Score.parse(["--tokens", "y"]) }
        let path = try tokenFile(Array(repeating: 95, count: 300), dtype: .uint16)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let gpt2 = modelFolder.appendingPathComponent("gpt2-bf16").path
        #expect { try Score.parse(["--checkpoint", gpt2, "--tokens", path, "--length", "200"]).run() } throws: {
            "\($0)".contains("128 rows")
        }
        let spec = modelFolder.appendingPathComponent("spec-alibi").path
        #expect { try Score.parse(["--checkpoint", spec, "--tokens", path, "--length", "100"]).run() } throws: {
            "\($0)".contains("vocabulary of 64")
        }
        #expect { try Score.parse(["--checkpoint", "/nowhere", "--tokens", path]).run() } throws: { "\($0)".contains("/nowhere") }
        let help = Extrapolate.helpMessage(for: Score.self)
        #expect(help.contains("--checkpoint") && help.contains("uint16"))
    }
}
