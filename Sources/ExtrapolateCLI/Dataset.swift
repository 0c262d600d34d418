import ArgumentParser
import Foundation
import Reports
import TokenData

extension Extrapolate {
    /// `extrapolate dataset`: pack, inspect, verify and time `.tokens.zst` datasets.
    public struct Dataset: ParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Pack token datasets into .tokens.zst, and inspect, verify or time them.",
            discussion: """
                A .tokens.zst file is a plain zstd stream (`zstd -d` prints the raw tokens) cut into independent \
                frames, with metadata (dtype, vocabulary, tokenizer, documents, checksum, provenance) and a seek table \
                so any token range decodes on its own. Docs/token-format.md has the byte layout.
                """,
            subcommands: [Pack.self, Inspect.self, Verify.self, Benchmark.self]
        )

        public init() {}
    }
}

extension Extrapolate.Dataset {
    /// `dataset inspect`: a dataset's metadata and size.
    public struct Inspect: ParsableCommand {
        public static let configuration = CommandConfiguration(abstract: "Show a dataset's metadata and size.")
        @Argument(help: "A .tokens.zst file.") var file: String
        @Flag(help: "Print JSON (Docs/json.md) instead of text.") var json = false

        public init() {}

        public func run() throws {
            let report = DatasetReport(try TokenDataset(path: file))
            print(json ? try report.json() : report.text())
        }
    }

    /// `dataset verify`: decode everything and check every checksum.
    public struct Verify: ParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Decode every frame and check sizes and checksums; exit 1 naming the first bad frame.")
        @Argument(help: "A .tokens.zst file.") var file: String

        public init() {}

        public func run() throws {
            let dataset = try TokenDataset(path: file)
            let frames = try dataset.verify()
            print("\(file): OK (\(frames) frames, \(dataset.count) tokens, \(dataset.metadata.checksum))")
        }
    }
}
