import Foundation
import TestSupport
import Testing

@testable import TokenData

/// Ids identical to Hugging Face `tokenizers` on tokenizers of each supported kind (`Tests/Fixtures/make_tokenizers.py`
/// trained them and recorded the reference ids).
@Suite struct TokenizerMatchesTokenizers {
    struct Reference: Decodable {
        struct Case: Decodable {
            var text: String?
            var bytes: String?
            var ids: [Int32]
            var idsWithoutSpecialTokens: [Int32]
        }
        var cases: [Case]
    }

    static let kinds = ["gpt2", "neox", "llama3", "llama2", "mistral"]

    /// Real vocabularies, when `make_tokenizers.py --real` has built them here (opt-in: 7 MB, not committed).
    static let real: [String] =
        ((try? FileManager.default.contentsOfDirectory(
            atPath: Repository.fixtures.appendingPathComponent("tokenizers").path)) ?? []).filter {
            $0.hasPrefix("real-")
        }
        .sorted()

    @Test(arguments: kinds) func identicalIds(kind: String) throws {
        try check(kind)
    }

    @Test func identicalIdsOnRealVocabularies() throws {
        if Self.real.isEmpty {
            print("skipped: no real vocabularies (python Tests/Fixtures/make_tokenizers.py --real builds them)")
        }
        for kind in Self.real { try check(kind) }
    }

    func check(_ kind: String) throws {
        let folder = Repository.fixtures.appendingPathComponent("tokenizers/\(kind)").path
        let tokenizer = try Tokenizer(path: folder)
        let reference = try JSONDecoder().decode(
            Reference.self, from: Data(contentsOf: URL(fileURLWithPath: "\(folder)/reference.json")))
        #expect(reference.cases.count >= 14)
        for (index, item) in reference.cases.enumerated() {
            // Invalid UTF-8 is decoded with U+FFFD replacements, as Python's errors="replace" does.
            let text =
                try item.text ?? String(decoding: #require(Data(base64Encoded: item.bytes ?? "")), as: UTF8.self)
            let label = "\(kind) case \(index): \(text.prefix(40).debugDescription)"
            let ids = tokenizer.encode(text)
            if ids != item.ids {
                let first =
                    zip(ids, item.ids).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                    ?? min(ids.count, item.ids.count)
                let ours = Array(ids[first..<min(first + 8, ids.count)])
                let theirs = Array(item.ids[first..<min(first + 8, item.ids.count)])
                Issue.record(
                    Comment(
                        rawValue: "\(label): first difference at \(first): \(ours) vs \(theirs) "
                            + "(\(ids.count) vs \(item.ids.count) ids)"))
            }
            #expect(tokenizer.encode(text, addSpecialTokens: false) == item.idsWithoutSpecialTokens, "\(label)")
        }
    }
}

@Suite struct TokenizerOnTwoCores {
    /// The KJV validation text (370k characters): its bytes are the dataset's tokens.
    static let text: String = {
        let dataset = try? TokenDataset(path: Repository.kjvValidation)
        let tokens = (try? dataset?.tokens(in: 0..<(dataset?.count ?? 0))) ?? []
        return String(decoding: tokens.map { UInt8($0) }, as: UTF8.self)
    }()

    @Test(arguments: TokenizerMatchesTokenizers.kinds) func cutTextGivesTheSameIds(kind: String) throws {
        let tokenizer = try Tokenizer(path: Repository.fixtures.appendingPathComponent("tokenizers/\(kind)").path)
        #expect(Self.text.count > 300_000)
        #expect(tokenizer.cutsAtLineStarts == ["gpt2", "llama3"].contains(kind))
        #expect(tokenizer.encode(Self.text, threads: 2) == tokenizer.encode(Self.text))
        let documents = Self.text.components(separatedBy: "\n\n").prefix(200).map { String($0) }
        #expect(tokenizer.encode(documents: documents, threads: 2) == documents.map { tokenizer.encode($0) })
    }

    @Test func unsupportedComponentsAreNamed() throws {
        let base = try String(
            contentsOf: Repository.fixtures.appendingPathComponent("tokenizers/gpt2/tokenizer.json"), encoding: .utf8)
        func error(_ replace: String, with: String) -> String {
            do {
                _ = try Tokenizer(data: Data(base.replacingOccurrences(of: replace, with: with).utf8), path: "t.json")
                return "no error"
            } catch { return error.description }
        }
        #expect(error(#""type": "BPE""#, with: #""type": "Unigram""#).contains("Unigram model is not supported"))
        #expect(
            error(#""normalizer": null"#, with: #""normalizer": {"type": "Precompiled", "precompiled_charsmap": ""}"#)
                .contains("Precompiled normalizer"))
        #expect(
            error(
                #""pre_tokenizer": {"#,
                with:
                    #""pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated", "invert": false}, "unused": {"#
            ).contains(#"regex \w+"#))
        #expect(error("{", with: "[").contains("not a JSON object"))
    }

    /// Found by fuzzing tokenizer-json: Replace(" ", a 700-byte text holding spaces) twice made a 50-byte text 80 MB;
    /// ten would exhaust any machine. A normalizer that can grow text past 4096× is refused when loaded, while every
    /// real pipeline (NFKC, Prepend("▁"), Replace(" ", "▁")) loads.
    @Test func normalizersThatCouldGrowTextWithoutBoundAreRefused() throws {
        let kept = Repository.root.appendingPathComponent("Tests/fuzz/regressions/tokenizer-json/replace-chain-growth")
        #expect {
            _ = try Tokenizer(data: Data(contentsOf: kept), path: "t.json")
        } throws: { "\($0)".contains("its steps can multiply a text's length by up to 490000") }
        let real: Normalizer = .sequence([.nfkc, .prepend("▁"), .replace(pattern: " ", content: "▁")])
        #expect(real.growth == 18 * 4 * 3 && real.growth <= Tokenizer.maximumNormalizerGrowth)
        for kind in ["gpt2", "neox", "llama2", "llama3", "mistral"] {
            #expect(throws: Never.self) { try Tokenizer(path: Repository.fixtures.path + "/tokenizers/\(kind)") }
        }
    }
}

@Suite struct PackingTextWithATokenizer {
    @Test(arguments: ["gpt2", "llama2"]) func documentsAreTheReferenceIdsWithTheEndToken(kind: String) throws {
        let scratch = try ScratchFolder("pack-tokenizer")
        defer { scratch.remove() }
        let folder = Repository.fixtures.appendingPathComponent("tokenizers/\(kind)").path
        let reference = try JSONDecoder().decode(
            TokenizerMatchesTokenizers.Reference.self,
            from: Data(contentsOf: URL(fileURLWithPath: "\(folder)/reference.json")))
        let cases = reference.cases.filter { ($0.text ?? "").count > 0 }
        let lines = try cases.map { item in
            String(decoding: try JSONSerialization.data(withJSONObject: ["text": item.text ?? ""]), as: UTF8.self)
        }
        let input = scratch.path("docs.jsonl")
        try lines.joined(separator: "\n").write(toFile: input, atomically: true, encoding: .utf8)
        let tokenizer = try Tokenizer(path: folder)
        let end = try #require(tokenizer.endOfDocument)
        var options = PackOptions(format: .jsonl, endOfDocument: Int(end.id))
        options.textTokenizer = tokenizer
        options.threads = 2
        let output = scratch.path("docs.tokens.zst")
        let metadata = try Packer.pack([input], output: output, options: options)
        #expect(metadata.tokenizer == kind && metadata.tokenizerHash == tokenizer.hash)
        #expect(metadata.vocabularySize == tokenizer.vocabularySize && metadata.documentCount == cases.count)
        let dataset = try TokenDataset(path: output)
        let expected = cases.flatMap { $0.ids + [end.id] }
        #expect(try dataset.tokens(in: 0..<dataset.count) == expected)
    }
}
