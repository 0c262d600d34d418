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

    @Test(arguments: kinds) func identicalIds(kind: String) throws {
        let folder = Repository.fixtures.appendingPathComponent("tokenizers/\(kind)").path
        let tokenizer = try Tokenizer(path: folder)
        let reference = try JSONDecoder().decode(
            Reference.self, from: Data(contentsOf: URL(fileURLWithPath: "\(folder)/reference.json")))
        #expect(reference.cases.count >= 15)
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
