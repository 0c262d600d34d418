import Engine
import Foundation
import TestSupport
import Testing
import TokenData

@testable import Evaluation

/// Passkey retrieval against `transformers` (Tests/Fixtures/make_passkey_reference.py): the prompts, tokens, keys,
/// verdicts of greedy `generate` and key log-probabilities of two tiny random models with real fixture tokenizers.
@Suite struct PasskeyAgainstTransformers {
    struct Reference: Decodable {
        var seed: UInt64
        var cells: [Cell]
        struct Cell: Decodable {
            var length: Int
            var depth: Double
            var trial: Int
            var key: Int
            var filler_characters: Int
            var tokens: [Int32]
            var key_start: Int
            var key_log_probabilities: [Double]
            var retrieved: Bool
            var argmax: [Int32]?
        }
    }

    static let folder = Repository.fixtures.appendingPathComponent("passkey")

    static func load(_ name: String) throws -> (LanguageModel, Passkey.Encoding, Reference) {
        let path = folder.appendingPathComponent(name).path
        let reference = try loadJSON(Reference.self, "passkey/\(name)/reference.json")
        return (try LanguageModel.load(path), .tokenizer(try Tokenizer(path: path)), reference)
    }

    @Test(arguments: ["llama", "gpt2"])
    func promptsTokensAndKeysAreTheReferences(model name: String) throws {
        let (_, encoding, reference) = try Self.load(name)
        #expect(reference.cells.count >= 20)
        for cell in reference.cells {
            #expect(Passkey.key(seed: reference.seed, trial: cell.trial) == cell.key)
            let fitted = try #require(
                try Passkey.fitting(length: cell.length, key: cell.key, depth: cell.depth, encoding: encoding))
            let where_ = "\(name) length \(cell.length) depth \(cell.depth) trial \(cell.trial)"
            #expect(fitted.fillerCharacters == cell.filler_characters, "\(where_)")
            #expect(fitted.tokens == cell.tokens, "\(where_)")
            #expect(fitted.keyStart == cell.key_start, "\(where_)")
        }
    }

    @Test(arguments: ["llama", "gpt2"])
    func verdictsAndKeyLogProbabilitiesAreTransformers(model name: String) throws {
        let (model, _, reference) = try Self.load(name)
        var worst = 0.0
        for cell in reference.cells {
            let trial = try Passkey.score(
                Passkey.Case(
                    key: cell.key, fillerCharacters: cell.filler_characters, tokens: cell.tokens,
                    keyStart: cell.key_start), model: model)
            #expect(trial.retrieved == cell.retrieved, "\(name) \(cell.length)/\(cell.depth)/\(cell.trial)")
            #expect(trial.keyTokenLogProbabilities.count == cell.key_log_probabilities.count)
            for (ours, theirs) in zip(trial.keyTokenLogProbabilities, cell.key_log_probabilities) {
                worst = max(worst, abs(ours - theirs))
            }
        }
        #expect(worst <= 1e-4, "\(name): worst |Δ log p| of a key token \(worst)")
    }

    /// The fixtures' random models retrieve no key, so the greedy flags are also checked where they are true: with
    /// `transformers`' argmax at every position as the targets, every flag must be set; with the prompt's own
    /// tokens, a flag is set exactly where the argmax is the next token.
    @Test(arguments: ["llama", "gpt2"])
    func greedyFlagsAreTheArgmaxOfTransformers(model name: String) throws {
        let (model, _, reference) = try Self.load(name)
        let cells = reference.cells.filter { $0.argmax != nil }
        #expect(cells.count >= 5)
        for cell in cells {
            let argmax = cell.argmax!
            let inputs = Array(cell.tokens.dropLast())
            let chosen = try model.scoresWithGreedy(inputs: inputs, targets: argmax)
            #expect(chosen.greedy.allSatisfy { $0 }, "\(name) \(cell.length): argmax targets not all greedy")
            let own = try model.scoresWithGreedy(inputs: inputs, targets: Array(cell.tokens.dropFirst()))
            let expected = zip(argmax, cell.tokens.dropFirst()).map { $0 == $1 }
            #expect(own.greedy == expected, "\(name) \(cell.length): flags differ from argmax == next token")
        }
    }
}

@Suite struct PasskeyPrompts {
    @Test func theWilsonIntervalIsTheFormulas() throws {
        struct Case: Decodable {
            var successes: Int
            var trials: Int
            var interval: [Double]
        }
        let cases = try loadJSON([Case].self, "passkey/wilson.json")
        #expect(cases.count >= 12)
        for c in cases {
            let (lower, upper) = Passkey.wilson(successes: c.successes, trials: c.trials)
            #expect(abs(lower - c.interval[0]) < 1e-12 && abs(upper - c.interval[1]) < 1e-12, "\(c)")
        }
    }

    @Test func theKeyLineSitsAtItsDepthAndTheFillerIsCutInCharacters() {
        let start = Passkey.prompt(key: 12345, fillerCharacters: 200, depth: 0)
        let end = Passkey.prompt(key: 12345, fillerCharacters: 200, depth: 100)
        let middle = Passkey.prompt(key: 12345, fillerCharacters: 200, depth: 50)
        let line = "The pass key is 12345. Remember it. 12345 is the pass key."
        #expect(start.hasPrefix(Passkey.instruction + "\n\n" + line + "\n"))
        #expect(end.hasSuffix("\n" + line + "\n\n" + Passkey.question))
        let before = middle.components(separatedBy: "\n")[1]
        #expect(before.count == 100 && Passkey.filler.hasPrefix(before.prefix(80)))
        #expect(start.count == end.count && start.count == middle.count)
    }

    @Test func aLengthTooShortForThePromptIsNoCase() throws {
        #expect(try Passkey.fitting(length: 64, key: 12345, depth: 50, encoding: .bytes) == nil)
        let fitted = try #require(try Passkey.fitting(length: 1000, key: 12345, depth: 50, encoding: .bytes))
        #expect(fitted.length == 1000, "bytes fill the length exactly")
        #expect(fitted.tokens.suffix(5) == Array("12345".utf8).map(Int32.init))
    }
}
