import ArgumentParser
import Engine
import Evaluation
import Foundation
import Reports
import Testing
import TestSupport
import TokenData

@testable import ExtrapolateCLI

let modelFolder = Repository.models
typealias Score = Extrapolate.Score

/// Writes `tokens` as a raw little-endian file of `dtype` (plus `extra` bytes) and returns its path.
func tokenFile(_ tokens: [Int], dtype: TokenDType, extra: [UInt8] = []) throws -> String {
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

@Suite("extrapolate score")
struct ScoreTests {
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
        #expect(throws: TokenDataError.tooShort(path: narrow, available: 3, requested: 4)) {
            try TokenFile.read(path: narrow, dtype: .uint16, offset: 2, count: 4)
        }
        #expect(throws: TokenDataError.misaligned(path: odd, bytes: 11, width: 2)) {
            try TokenFile.read(path: odd, dtype: .uint16, count: 1)
        }
        #expect { try TokenFile.read(path: "/no/such.bin", dtype: .uint16, count: 1) } throws: {
            "\($0)".contains("No such file")
        }
        #expect { try TokenFile.read(path: "data.jsonl.zst", dtype: .uint16, count: 1) } throws: {
            "\($0)".contains("dataset pack")
        }
        #expect { try TokenFile.read(path: "/no/data.tokens.zst", dtype: .uint16, count: 1) } throws: {
            "\($0)".contains("/no/data.tokens.zst")
        }
        #expect(
            try TokenFile.read(path: Repository.kjvValidation, dtype: .uint32, offset: 2, count: 6)
                == Array("Samuel".utf8).map(Int32.init))
        #expect {
            try TokenFile.read(path: Repository.kjvValidation, dtype: .uint16, offset: 373_230, count: 7)
        } throws: { "\($0)".contains("fewer") }
    }

    @Test("A FIFO (named pipe) is refused at once instead of blocking the read")
    func fifo() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fifo-\(UUID().uuidString)").path
        #expect(mkfifo(path, 0o600) == 0)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect { try TokenFile.read(path: path, dtype: .uint16, count: 4) } throws: {
            "\($0)".contains("not a regular file")
        }
        #expect { try TokenDataset(path: path + "") } throws: { "\($0)".contains("not a regular file") }
    }

    @Test("Scores a fixture end to end and agrees with the reference mean NLL")
    func endToEnd() throws {
        let folder = modelFolder.appendingPathComponent("llama-yarn").path
        let reference =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: folder + "/reference.json"))) as? [String: Any]
        let tokens = try #require(reference?["tokens"] as? [Int])
        let logprobs = try #require(reference?["logprobs"] as? [Double])
        let path = try tokenFile(tokens, dtype: .uint16)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try ScoreResult.run(
            checkpoint: folder, data: DataReference(path: path), offset: 0, length: tokens.count,
            keepTokens: true)
        let expected = -logprobs.reduce(0, +) / Double(tokens.count - 1)
        #expect(abs(result.meanNLL - expected) < 1e-5 && result.tokens == tokens.count - 1)
        let text = ScoreReport(result).text()
        #expect(text.contains("4.00× trained length") && text.contains("perplexity"))
        // header, one line per token, summary, the note on how the weights are held
        #expect(text.split(separator: "\n").count == 1 + tokens.count + 9)
        #expect(text.contains("note            weights held as float32: "))
        #expect(
            text.contains(
                "threads         \(result.threads) (OpenBLAS \(result.blasCore) kernels, ours \(result.kernels))"))
        #expect(["avx512", "avx2", "generic"].contains(result.kernels))
        let json = try JSONSerialization.jsonObject(with: Data(ScoreReport(result).json().utf8)) as? [String: Any]
        #expect((json?["logprobs"] as? [Any])?.count == tokens.count && json?["tokens"] as? Int == tokens.count - 1)
        #expect(abs((json?["perplexity"] as? Double ?? 0) - exp(expected)) < 1e-3)
        try Score.parse(["--checkpoint", folder, "--tokens", path, "--length", "64", "--summary"]).run()
    }

    @Test("Without --length a file shorter than the trained length is scored whole, and the output says so")
    func defaultLength() throws {
        let path = try tokenFile(Array(repeating: 5, count: 40), dtype: .uint16)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try ScoreResult.run(
            checkpoint: modelFolder.appendingPathComponent("llama-yarn").path,
            data: DataReference(path: path), offset: 0, length: nil, keepTokens: false)
        #expect(result.length == 40 && result.tokens == 39)
        #expect(result.notes.first?.contains("fewer than the trained length 64") == true)
        #expect(ScoreReport(result).text().contains("scored all 40"))
    }

    @Test("Arguments are validated with exit code 64, and model errors reach the user as one line")
    func errors() throws {
        for arguments in [
            ["--length", "1"], ["--length", "-5"], ["--dtype", "int8"], ["--offset", "-1"], ["--threads", "0"],
        ] {
            do {
                _ = try Score.parse(["--checkpoint", "x", "--tokens", "y"] + arguments)
                Issue.record("\(arguments) was accepted")
            } catch {
                #expect(Score.exitCode(for: error) == .validationFailure, "\(arguments): \(Score.message(for: error))")
                #expect(
                    !Score.message(for: error).contains("Missing value"), "\(arguments): \(Score.message(for: error))")
            }
        }
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
        #expect { try Score.parse(["--checkpoint", "/nowhere", "--tokens", path]).run() } throws: {
            "\($0)".contains("/nowhere")
        }
        let help = Extrapolate.helpMessage(for: Score.self)
        #expect(help.contains("--checkpoint") && help.contains("uint16") && help.contains(".tokens.zst"))
    }
}
