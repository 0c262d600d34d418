import Engine
import Evaluation
import Foundation
import Testing
import TestSupport

let models = Repository.models

/// Counts how often each stream index is scored.
func coverage(_ plan: [WindowSpec], count: Int) -> [Int] {
    var scored = [Int](repeating: 0, count: count)
    for window in plan { for t in window.scored { scored[t] += 1 } }
    return scored
}

@Suite("Window accounting")
struct AccountingTests {
    @Test(
        "Nonoverlapping and sliding score every token but the first exactly once, within the window length",
        arguments: [
            (1000, 64, 64), (1000, 64, 1), (1000, 64, 17), (65, 64, 64), (64, 64, 8), (10, 64, 64), (2, 64, 64),
            (777, 100, 100),
        ])
    func exactlyOnce(_ count: Int, _ length: Int, _ stride: Int) throws {
        let plan = try WindowPlan.windows(
            count: count, options: WindowOptions(length: length, protocolKind: .sliding(stride: stride)))
        let scored = coverage(plan, count: count)
        #expect(scored[0] == 0 && scored.dropFirst().allSatisfy { $0 == 1 })
        #expect(plan.allSatisfy { $0.modelLength <= length && $0.modelLength >= 1 })
        // A scored target is always predicted by an input inside its window.
        #expect(
            plan.allSatisfy { w in w.scored.allSatisfy { $0 - 1 >= w.inputs.lowerBound && $0 - 1 < w.inputs.upperBound }
            })
        if stride == length {
            let nonoverlapping = try WindowPlan.windows(count: count, options: WindowOptions(length: length))
            #expect(nonoverlapping == plan)
            #expect(plan.dropLast().allSatisfy { $0.scored.count == length })
        } else {
            #expect(plan.dropFirst().allSatisfy { $0.scored.count <= stride })
        }
    }

    @Test("With a BOS in front of every window, every token including the first is scored once")
    func bos() throws {
        for bos in [BOSPlacement.every, .first] {
            let plan = try WindowPlan.windows(count: 300, options: WindowOptions(length: 32, bos: bos, bosToken: 1))
            #expect(coverage(plan, count: 300).allSatisfy { $0 == 1 }, "\(bos)")
            #expect(plan.allSatisfy { $0.modelLength <= 32 })
            #expect(
                plan[0].bos && plan[0].scored.lowerBound == 0
                    && plan.dropFirst().allSatisfy { $0.bos == (bos == .every) })
        }
        #expect(throws: EvaluationError.self) {
            try WindowPlan.windows(count: 10, options: WindowOptions(length: 4, bos: .every))
        }
    }

    @Test("Last-half scores only predictions from the second half of each window")
    func lastHalf() throws {
        let plan = try WindowPlan.windows(count: 1000, options: WindowOptions(length: 64, protocolKind: .lastHalf))
        let scored = coverage(plan, count: 1000)
        #expect(scored.allSatisfy { $0 <= 1 })
        #expect(plan.allSatisfy { w in w.scored.allSatisfy { w.position(predicting: $0) >= 32 } })
        #expect(plan.dropLast().allSatisfy { $0.scored.count == 32 })
    }

    @Test("Per-document windows never cross a document, short documents included")
    func documents() throws {
        let starts = [0, 5, 6, 200, 203]
        let plan = try WindowPlan.windows(
            count: 260, documentStarts: starts, options: WindowOptions(length: 50, perDocument: true))
        let ends = Array(starts.dropFirst()) + [260]
        for window in plan {
            let (start, end) = (starts[window.document], ends[window.document])
            #expect(window.inputs.lowerBound >= start && window.scored.upperBound < end)
        }
        let scored = coverage(plan, count: 260)
        for (start, end) in zip(starts, ends) {
            #expect(scored[start] == 0)  // each document's first token has no context
            #expect(scored[(start + 1)..<end].allSatisfy { $0 == 1 })
        }
        #expect(throws: EvaluationError.self) {
            try WindowPlan.windows(count: 100, options: WindowOptions(length: 10, protocolKind: .sliding(stride: 11)))
        }
    }

    @Test("Length grids")
    func grids() throws {
        #expect(try LengthGrid.parse("1x,2x,4x,16x", trainedLength: 64) == [64, 128, 256, 1024])
        #expect(try LengthGrid.parse("512, 1024", trainedLength: 64) == [512, 1024])
        let paper = try LengthGrid.parse("L+k", trainedLength: 512)
        #expect(paper.prefix(4) == [512, 513, 522, 532] && paper.last == 15512)
        #expect(throws: EvaluationError.self) { try LengthGrid.parse("2y", trainedLength: 64) }
        #expect(try LengthGrid(parsing: "1x,512").resolve(trainedLength: 128) == [128, 512])
        #expect(try LengthGrid(parsing: " 1x, 2x ,1024").description == "1x,2x,1024")
        // A bare 1 is a one-token window, not the trained length: the error says how to write that.
        #expect { try LengthGrid(parsing: "1") } throws: {
            "\($0)".contains("at least 2 tokens") && "\($0)".contains("write 1x")
        }
        #expect { try LengthGrid(parsing: "0.5x,-3") } throws: { "\($0)".contains("length -3 is too short") }
    }
}

@Suite("Evaluation against transformers")
struct EvaluationReferenceTests {
    struct Protocols: Decodable {
        struct Entry: Decodable {
            var length: Int; var stride: Int; var budget: Int; var tokens: Int; var mean_nll: Double
        }
        var results: [Entry]
    }

    @Test(
        "Nonoverlapping and sliding perplexities equal the HF guide's strided loop within 1e-4 relative",
        arguments: ["gpt2", "llama-gqa"])
    func strided(_ name: String) throws {
        let folder = models.appendingPathComponent(name)
        let reference = try JSONDecoder().decode(
            Protocols.self, from: Data(contentsOf: folder.appendingPathComponent("protocols.json")))
        struct Tokens: Decodable { var tokens: [Int32] }
        let tokens = try JSONDecoder().decode(
            Tokens.self, from: Data(contentsOf: folder.appendingPathComponent("reference.json"))
        ).tokens
        let model = try LanguageModel.load(folder.path)
        for entry in reference.results {
            let options = WindowOptions(length: entry.length, protocolKind: .sliding(stride: entry.stride))
            let result = try Evaluator.evaluate(
                model: model, tokens: Array(tokens.prefix(entry.budget + 1)), options: options)
            #expect(result.tokens == entry.tokens)
            #expect(
                abs(result.meanNLL - entry.mean_nll) / entry.mean_nll <= 1e-4,
                "\(name) L=\(entry.length) S=\(entry.stride): \(result.meanNLL) vs \(entry.mean_nll)")
        }
    }

    @Test("Position buckets, bits per byte, the window average and reproducible intervals")
    func statistics() throws {
        let model = try LanguageModel.load(models.appendingPathComponent("llama-bytes").path)
        let tokens: [Int32] = (0..<600).map { (i: Int) -> Int32 in Int32((i * 37 + i / 7) % 256) }
        let result = try Evaluator.evaluate(
            model: model, tokens: tokens, options: WindowOptions(length: 64), byteLevel: true)
        #expect(result.tokens == 599)
        let bucketTokens: Int = result.positions.map { (b: PositionBucket) -> Int in b.tokens }.reduce(0, +)
        #expect(bucketTokens == 599)
        let lowers: [Int] = result.positions.map { $0.lower }
        #expect(lowers == [0, 1, 3, 7, 15, 31, 63])  // positions 0…63 of a 64-token window
        let products: [Double] = result.positions.map { $0.meanNLL * Double($0.tokens) }
        let weighted: Double = products.reduce(0, +) / 599
        #expect(abs(weighted - result.meanNLL) < 1e-9)
        #expect(abs(result.bitsPerByte! - result.meanNLL / log(2)) < 1e-12)
        #expect(result.windowAveragedPerplexity.isFinite && result.windowAveragedPerplexity != result.perplexity)
        let a = Bootstrap.perplexityInterval(result, resamples: 500, seed: 7)!
        let b = Bootstrap.perplexityInterval(result, resamples: 500, seed: 7)!
        #expect(a == b && a.lower <= result.perplexity && result.perplexity <= a.upper && a.unit == "windows")
        let same = try Bootstrap.compare(result, result, resamples: 200, seed: 1)
        #expect(
            same.meanDifference == 0 && same.interval.lower == 0 && same.interval.upper == 0
                && same.fractionBBetter == 0)
        let shorter = try Evaluator.evaluate(model: model, tokens: tokens, options: WindowOptions(length: 32))
        #expect(throws: EvaluationError.self) { try Bootstrap.compare(result, shorter) }
    }

    @Test("A sweep reports learned positions past their table as unsupported, and adds rotary extensions")
    func sweep() throws {
        let tokens = (0..<300).map { Int32($0 % 96) }
        let data = EvaluationData(
            reference: DataReference(path: "memory"), tokens: tokens, documentStarts: [0], hasDocuments: false,
            byteLevel: false, tokenizer: nil, tokenizerHash: nil, vocabularySize: nil)
        let gpt2 = try SweepCheckpoint.load(models.appendingPathComponent("gpt2-bf16").path)
        let plain = SweepRunner(
            settings: EvaluationSettings(
                data: data.reference, lengths: try LengthGrid(parsing: "64,128,256"),
                resamples: 100))
        let points = try plain.run([gpt2], data: data).points
        #expect(points.map(\.length) == [64, 128, 256])
        #expect(points[2].unsupported?.contains("128 rows") == true && points[2].result == nil)
        #expect(points[0].result?.tokens == 299 && points[1].result?.tokens == 299)
        #expect(points[0].perplexity == points[0].result?.perplexity && points[0].meanNLL == points[0].result?.meanNLL)
        var withExtensions = plain
        withExtensions.settings.lengths = try LengthGrid(parsing: "64,128")
        withExtensions.settings.extensions = RotaryExtension.allCases
        #expect { try withExtensions.run([gpt2], data: data) } throws: { "\($0)".contains("no rotary layer") }
        let llama = try SweepCheckpoint.load(models.appendingPathComponent("llama-bytes").path)
        let extended = try withExtensions.run([llama], data: data).points
        #expect(Set(extended.map(\.series)) == Set(["nonoverlapping"] + RotaryExtension.allCases.map(\.rawValue)))
        // At 1x every extension is the identity (factor 1), so all series agree there.
        let atOne = extended.filter { $0.length == 64 }.compactMap { $0.result?.meanNLL }
        #expect(atOne.count == 6 && atOne.allSatisfy { abs($0 - atOne[0]) < 1e-6 })
        let at2 = extended.filter { $0.length == 128 }.compactMap { $0.result?.meanNLL }
        #expect(Set(at2.map { ($0 * 1e6).rounded() }).count > 1)
    }
}
