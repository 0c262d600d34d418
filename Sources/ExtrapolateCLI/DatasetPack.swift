import ArgumentParser
import Foundation
import Reports
import TokenData

extension Extrapolate.Dataset {
    /// `dataset pack`: convert token files into one `.tokens.zst`.
    public struct Pack: ParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Convert token files into one .tokens.zst.",
            discussion: """
                Formats (--from; guessed from the extension when omitted):
                  raw       little-endian uint16/uint32 tokens, no header (nanoGPT's
                            train.bin); width from --dtype
                  llmc      llm.c .bin with its 256-int32 header (GPT-2 uint16 or
                            Llama-3 uint32)
                  megatron  Megatron-LM prefix.idx + prefix.bin (give either file or
                            the prefix)
                  npy       NumPy .npy integer array
                  text      UTF-8 files, one document each, tokenized with --tokenizer,
                            else as bytes (vocabulary 256)
                  jsonl     JSON lines (.jsonl or .jsonl.zst) with a "text" field, one
                            document per line, tokenized like text

                Inputs are concatenated in the order given; each file (text: each file, jsonl: each line) starts a \
                document, and the document starts are stored in the metadata. The output may not be one of the inputs.

                With --tokenizer (a Hugging Face tokenizer.json, or a model folder holding one), text is tokenized \
                exactly as the `tokenizers` library does (BPE: GPT-2, GPT-NeoX/Pythia, SmolLM, Llama-2/3, Mistral, \
                Qwen2 pipelines), each document as `tokenizer.encode(text)` gives it (the template's BOS included), \
                followed by the tokenizer's end-of-text token unless --eos or --no-eos says otherwise; the tokenizer's \
                name and hash are recorded, so the daemon can refuse checkpoints with another tokenizer.
                """
        )

        @Argument(help: "Input files, in order.") var inputs: [String]
        @Option(name: .shortAndLong, help: "The .tokens.zst file to write.") var output: String
        @Option(help: "Input format (default: guessed from the extension).") var from: TokenSourceFormat?
        @Option(
            help:
                "Token width of the output (and of raw input); default uint16, or uint32 for a tokenizer over 65,536 tokens."
        ) var dtype: TokenDType?
        @Option(
            help:
                "A tokenizer.json, or a model folder holding one: tokenizes text formats, and is recorded (name, hash) for any format."
        ) var tokenizer: String?
        @Option(
            help:
                "Text formats: a token appended after every document (default: the tokenizer's end-of-text token, else none)."
        ) var eos: Int?
        @Flag(help: "Append no end-of-document token, even when the tokenizer has one.") var noEos = false
        @Option(help: "Declared vocabulary size (default: the tokenizer's, 256 for text, else largest token + 1).")
        var vocabulary: Int?
        @Option(help: "Tokenizer name to record when there is no --tokenizer file (text as bytes records 'bytes').")
        var tokenizerName: String?
        @Option(help: "A hash identifying the tokenizer's vocabulary, to record (with --tokenizer-name).")
        var tokenizerHash: String?
        @Option(help: "Threads that tokenize (default: every core).") var threads: Int?
        @Option(help: "Tokens per independently decodable frame.") var tokensPerFrame: Int = 65536
        @Option(help: "zstd compression level (1–19).") var level: Int = 9

        public init() {}

        public func validate() throws {
            if inputs.isEmpty { throw ValidationError("give at least one input file") }
            if !(1...19).contains(level) { throw ValidationError("--level must be 1…19") }
            if let eos, eos < 0 { throw ValidationError("--eos must not be negative") }
            if eos != nil && noEos { throw ValidationError("--eos and --no-eos are exclusive") }
            if tokenizer != nil && tokenizerName != nil {
                throw ValidationError("--tokenizer records the file's own name; drop --tokenizer-name")
            }
            if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
            if tokensPerFrame < 1 { throw ValidationError("--tokens-per-frame must be at least 1") }
            let target = URL(fileURLWithPath: output).resolvingSymlinksInPath().path
            if let same = inputs.first(where: { URL(fileURLWithPath: $0).resolvingSymlinksInPath().path == target }) {
                throw ValidationError(
                    "--output \(output) is the input \(same); writing it would destroy the input. Choose another name.")
            }
        }

        public func run() throws {
            guard let format = from ?? TokenSourceFormat.guess(inputs[0]) else {
                throw ValidationError("cannot tell the format of \(inputs[0]); pass --from")
            }
            let loaded = try tokenizer.map { path in
                do { return try Tokenizer(path: path) } catch { throw CommandError("\(error)") }
            }
            let textFormat = format == .text || format == .jsonl
            var endOfDocument = noEos ? nil : eos
            if let loaded, textFormat, eos == nil, !noEos, let end = loaded.endOfDocument {
                endOfDocument = Int(end.id)
                FileHandle.standardError.write(
                    Data("documents end with \(end.token) (id \(end.id)); --no-eos to leave them open\n".utf8))
            }
            let width = loaded.map { $0.vocabularySize > 65536 ? TokenDType.uint32 : .uint16 } ?? .uint16
            if let loaded, dtype == .uint16, loaded.vocabularySize > 65536 {
                throw ValidationError(
                    "\(loaded.name) has \(loaded.vocabularySize) tokens, more than uint16 holds; drop --dtype or use uint32"
                )
            }
            var options = PackOptions(
                format: format, dtype: dtype ?? width, endOfDocument: endOfDocument,
                vocabularySize: vocabulary ?? loaded?.vocabularySize, tokenizer: loaded?.name ?? tokenizerName,
                tokenizerHash: loaded?.hash ?? tokenizerHash, tokensPerFrame: tokensPerFrame, level: level)
            options.textTokenizer = textFormat ? loaded : nil
            if let threads { options.threads = threads }
            let progress = ProgressLine()
            let started = Date()
            let metadata = try Packer.pack(inputs, output: output, options: options) { done, total in
                if total > 0 { progress.update(Double(done) / Double(total), "packing \(Double(total) / 1e6) MB") }
            }
            progress.finish()
            // For the summary line only: a size that cannot be read shows as 0 bytes.
            let size = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
            print(
                "wrote \(output): \(metadata.tokenCount) tokens (\(metadata.dtype.rawValue)), \(metadata.documentCount) documents, "
                    + String(
                        format: "%.2f MB, %.2f bytes/token, %.1f s", Double(size) / 1e6,
                        Double(size) / Double(max(metadata.tokenCount, 1)), Date().timeIntervalSince(started)))
        }
    }
}
