import ArgumentParser
import Dispatch
import Foundation
import TokenData

/// `extrapolate dataset`: pack, inspect, verify and time `.tokens.zst` datasets.
public struct DatasetCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "dataset",
        abstract: "Pack token datasets into .tokens.zst, and inspect, verify or time them.",
        discussion: """
            A .tokens.zst file is a plain zstd stream (`zstd -d` prints the raw tokens) cut into independent
            frames, with metadata (dtype, vocabulary, tokenizer, documents, checksum, provenance) and a seek table
            so any token range decodes on its own. Docs/token-format.md has the byte layout.
            """,
        subcommands: [Pack.self, InspectDataset.self, Verify.self, Benchmark.self]
    )

    public init() {}

    struct Pack: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Convert token files into one .tokens.zst.",
            discussion: """
                Formats (--from; guessed from the extension when omitted):
                  raw       little-endian uint16/uint32 tokens, no header (nanoGPT train.bin); width from --dtype
                  llmc      llm.c .bin with its 256-int32 header (GPT-2 uint16 or Llama-3 uint32)
                  megatron  Megatron-LM prefix.idx + prefix.bin (give either file or the prefix)
                  npy       NumPy .npy integer array
                  text      UTF-8 files, one document each, tokenized as bytes (vocabulary 256)
                  jsonl     JSON lines (.jsonl or .jsonl.zst) with a "text" field, one document per line, as bytes
                Inputs are concatenated in the order given; each file (text: each file, jsonl: each line) starts a
                document, and the document starts are stored in the metadata.
                """
        )

        @Argument(help: "Input files, in order.") var inputs: [String]
        @Option(name: .shortAndLong, help: "The .tokens.zst file to write.") var output: String
        @Option(help: "Input format: \(TokenSourceFormat.allCases.map(\.rawValue).joined(separator: ", ")).") var from: String?
        @Option(help: "Token width of the output (and of raw input): uint16 or uint32.") var dtype: String = "uint16"
        @Option(help: "Text formats: a token appended after every document (e.g. 0 or 256).") var eos: Int?
        @Option(help: "Declared vocabulary size (default: 256 for text, else largest token + 1).") var vocabulary: Int?
        @Option(help: "Tokenizer name to record (text formats record 'bytes').") var tokenizer: String?
        @Option(help: "A hash identifying the tokenizer's vocabulary, to record.") var tokenizerHash: String?
        @Option(help: "Tokens per independently decodable frame.") var tokensPerFrame: Int = 65536
        @Option(help: "zstd compression level (1–19).") var level: Int = 9

        func validate() throws {
            if inputs.isEmpty { throw ValidationError("give at least one input file") }
            if TokenDType(rawValue: dtype) == nil { throw ValidationError("--dtype must be uint16 or uint32") }
            if let from, TokenSourceFormat(rawValue: from) == nil {
                throw ValidationError("--from must be one of \(TokenSourceFormat.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if !(1...19).contains(level) { throw ValidationError("--level must be 1…19") }
            if let eos, eos < 0 { throw ValidationError("--eos must not be negative") }
        }

        func run() throws {
            guard let format = from.flatMap(TokenSourceFormat.init(rawValue:)) ?? TokenSourceFormat.guess(inputs[0]) else {
                throw ValidationError("cannot tell the format of \(inputs[0]); pass --from")
            }
            let options = PackOptions(format: format, dtype: TokenDType(rawValue: dtype) ?? .uint16, endOfDocument: eos,
                                      vocabularySize: vocabulary, tokenizer: tokenizer, tokenizerHash: tokenizerHash, tokensPerFrame: tokensPerFrame, level: level)
            var lastReport = Date()
            var reported = false
            let started = Date()
            let metadata = try Packer.pack(inputs, output: output, options: options) { done, total in
                guard Date().timeIntervalSince(lastReport) > 1, total > 0 else { return }
                lastReport = Date()
                reported = true
                FileHandle.standardError.write(Data(String(format: "\r%5.1f%% of %.1f MB", 100 * Double(done) / Double(total), Double(total) / 1e6).utf8))
            }
            if reported { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            let size = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
            print("wrote \(output): \(metadata.tokenCount) tokens (\(metadata.dtype.rawValue)), \(metadata.documentCount) documents, "
                + String(format: "%.2f MB, %.2f bytes/token, %.1f s", Double(size) / 1e6,
                         Double(size) / Double(max(metadata.tokenCount, 1)), Date().timeIntervalSince(started)))
        }
    }

    struct InspectDataset: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Show a dataset's metadata and size.")
        @Argument(help: "A .tokens.zst file.") var file: String
        @Flag(help: "Print JSON for scripts.") var json = false

        func run() throws {
            let dataset = try TokenDataset(path: file)
            let m = dataset.metadata
            let raw = m.tokenCount * m.dtype.width
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
                var object = try JSONSerialization.jsonObject(with: encoder.encode(m)) as? [String: Any] ?? [:]
                object["fileBytes"] = dataset.fileSize
                object["frames"] = dataset.frameCount
                object["compressionRatio"] = Double(raw) / Double(max(dataset.compressedBytes, 1))
                object["documentStarts"] = Array(dataset.documentStarts.prefix(1000))
                print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted]), as: UTF8.self))
                return
            }
            let lengths = zip(dataset.documentStarts, dataset.documentStarts.dropFirst() + [m.tokenCount]).map { $1 - $0 }
            print("""
                file              \(file) (\(dataset.fileSize) bytes)
                tokens            \(m.tokenCount) \(m.dtype.rawValue), vocabulary \(m.vocabularySize)
                tokenizer         \(m.tokenizer ?? "unknown")\(m.tokenizerHash.map { " (\($0))" } ?? "")
                documents         \(m.documentCount)\(lengths.isEmpty ? "" : ", \(lengths.min()!)–\(lengths.max()!) tokens each")
                frames            \(dataset.frameCount) of \(m.tokensPerFrame) tokens
                compression       \(String(format: "%.2f", Double(raw) / Double(max(dataset.compressedBytes, 1))))× (\(raw) → \(dataset.compressedBytes) bytes)
                checksum          \(m.checksum)
                source            \(m.source.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))
                created           \(m.created)
                """)
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decode every frame and check sizes and checksums; exit 1 naming the first bad frame.")
        @Argument(help: "A .tokens.zst file.") var file: String

        func run() throws {
            let dataset = try TokenDataset(path: file)
            let frames = try dataset.verify()
            print("\(file): OK (\(frames) frames, \(dataset.count) tokens, \(dataset.metadata.checksum))")
        }
    }

    struct Benchmark: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time decoding: whole-file throughput on one and on all cores, and random-window latency.")
        @Argument(help: "A .tokens.zst file.") var file: String
        @Option(help: "Window length for the latency test.") var window: Int = 2048
        @Option(help: "Random windows to time.") var samples: Int = 200

        func run() throws {
            let dataset = try TokenDataset(path: file)
            for threads in [1, ProcessInfo.processInfo.activeProcessorCount] {
                var best = Double.infinity
                for _ in 0..<3 {
                    let start = Date()
                    try decodeAll(dataset, threads: threads)
                    best = min(best, Date().timeIntervalSince(start))
                }
                print(String(format: "decode, %d thread%@: %.1f M tokens/s (best of 3)", threads, threads == 1 ? "" : "s",
                             Double(dataset.count) / best / 1e6))
            }
            guard dataset.count > window else { return }
            var generator = SystemRandomNumberGenerator()
            var latencies: [Double] = []
            for _ in 0..<samples {
                let fresh = try TokenDataset(path: file)     // cold cache: decode the frames each time
                let start = Int.random(in: 0...(dataset.count - window), using: &generator)
                let t0 = Date()
                _ = try fresh.tokens(in: start..<(start + window))
                latencies.append(Date().timeIntervalSince(t0))
            }
            latencies.sort()
            print(String(format: "random %d-token window (cold): median %.3f ms, p99 %.3f ms", window,
                         latencies[latencies.count / 2] * 1e3, latencies[min(latencies.count - 1, latencies.count * 99 / 100)] * 1e3))
        }

        func decodeAll(_ dataset: TokenDataset, threads: Int) throws {
            let perFrame = dataset.metadata.tokensPerFrame
            let frames = (dataset.count + perFrame - 1) / perFrame
            let lock = NSLock()
            var failure: Error?
            let chunk = (frames + threads - 1) / threads
            let work: (Int) -> Void = { part in
                let fresh = try? TokenDataset(path: dataset.path)
                for frame in (part * chunk)..<min((part + 1) * chunk, frames) {
                    do { _ = try fresh?.tokens(in: (frame * perFrame)..<min((frame + 1) * perFrame, dataset.count)) } catch {
                        lock.lock(); failure = error; lock.unlock()
                    }
                }
            }
            withoutActuallyEscaping(work) { escapable in
                DispatchQueue.concurrentPerform(iterations: threads, execute: unsafeBitCast(escapable, to: (@Sendable (Int) -> Void).self))
            }
            if let failure { throw failure }
        }
    }
}
