import Engine
import Foundation
import TokenData

/// Passkey retrieval (Mohtashami & Jaggi 2023, "Landmark Attention", the test the Position Interpolation, YaRN and
/// LongRoPE papers report beside perplexity): a five-digit key hidden at a chosen depth in filler text, and the
/// question that ends with "The pass key is". Scored in one forward pass without generation: the key counts as
/// retrieved when, at every token of the key, the key's token has the largest logit given the prompt and the key's
/// tokens before it — exactly what greedy decoding would write. The key's mean log-probability is the continuous
/// measure beside it. Docs/spec/passkey.md has the template, its source and its variants.
public enum Passkey {
    /// The task's first line, as in Landmark Attention's `run_test.py` (and LongLoRA's, YaRN's copies of it).
    public static let instruction =
        "There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. I will quiz you "
        + "about the important information there."
    /// The filler sentence, repeated (joined by one space) and cut to a number of characters.
    public static let filler =
        "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
    /// The last line; the key follows it after one space.
    public static let question = "What is the pass key? The pass key is"

    /// The line that holds the key.
    public static func keyLine(_ key: Int) -> String { "The pass key is \(key). Remember it. \(key) is the pass key." }

    /// The key of trial `trial` under `seed`: five digits, 10000…99999, the same at every length and depth (so cells
    /// differ by length and depth, not by keys). The first value of SplitMix64 seeded with `seed + trial`.
    public static func key(seed: UInt64, trial: Int) -> Int {
        var generator = SeededGenerator(seed: seed &+ UInt64(trial))
        return 10_000 + Int(generator.next() % 90_000)
    }

    /// The first `count` characters of the filler repeated without end.
    static func fillerText(_ count: Int) -> String {
        guard count > 0 else { return "" }
        let unit = Array(filler + " ")
        return String((0..<count).map { unit[$0 % unit.count] })
    }

    /// The prompt with `fillerCharacters` characters of filler, `depth` per cent of them before the key line:
    /// instruction, filler before, key line, filler after, question, joined by newlines. (Landmark Attention cuts
    /// both parts from the start of the same repeated filler, in characters; so does this.)
    public static func prompt(key: Int, fillerCharacters: Int, depth: Double) -> String {
        let before = Int(Double(fillerCharacters) * depth / 100)
        return [
            instruction, fillerText(before), keyLine(key), fillerText(fillerCharacters - before), question,
        ].joined(separator: "\n")
    }

    /// How text becomes tokens: a `tokenizer.json`, or UTF-8 bytes for byte-level models (the demo probes).
    public enum Encoding: Sendable {
        case bytes
        case tokenizer(Tokenizer)

        func encode(_ text: String) -> [Int32] {
            switch self {
            case .bytes: text.utf8.map { Int32($0) }
            case .tokenizer(let tokenizer): tokenizer.encode(text)
            }
        }

        /// A name for the output: the tokenizer's, or "bytes".
        public var name: String {
            switch self {
            case .bytes: "bytes"
            case .tokenizer(let tokenizer): tokenizer.name
            }
        }
    }

    /// One prompt, tokenized: the prompt and the key together, and where the key's tokens start.
    public struct Case: Sendable, Hashable {
        /// The key.
        public var key: Int
        /// Characters of filler the prompt holds.
        public var fillerCharacters: Int
        /// The prompt's tokens followed by the key's (the key after one space).
        public var tokens: [Int32]
        /// Where the key's tokens start in `tokens`.
        public var keyStart: Int

        /// The positions the model runs over: every token but the last (the last is only predicted).
        public var length: Int { tokens.count - 1 }
    }

    /// The prompt with the most filler whose pass is at most `length` positions, for `key` at `depth` per cent.
    /// - Returns: `nil` when even the prompt without filler is longer than `length`.
    /// - Throws: `EvaluationError.invalidOptions` when the tokenizer does not tokenize the prompt as a prefix of the
    ///   prompt followed by the key (the key's tokens could not be told apart).
    public static func fitting(length: Int, key: Int, depth: Double, encoding: Encoding) throws(EvaluationError)
        -> Case?
    {
        func build(_ characters: Int) -> [Int32] {
            encoding.encode(prompt(key: key, fillerCharacters: characters, depth: depth) + " \(key)")
        }
        guard build(0).count - 1 <= length else { return nil }
        // The largest filler that fits: token counts grow with the filler (a character adds at most a token), so a
        // binary search over characters finds it. Byte-level models take a character a token; BPE about four.
        var low = 0
        var high = 8 * length + 64
        while low < high {
            let middle = (low + high + 1) / 2
            if build(middle).count - 1 <= length { low = middle } else { high = middle - 1 }
        }
        let text = prompt(key: key, fillerCharacters: low, depth: depth)
        let tokens = encoding.encode(text + " \(key)")
        let promptTokens = encoding.encode(text)
        guard promptTokens.count < tokens.count, Array(tokens.prefix(promptTokens.count)) == promptTokens else {
            throw .invalidOptions(
                "passkey: the tokenizer \(encoding.name) does not tokenize the prompt as the start of the prompt "
                    + "followed by ' \(key)'; the key's tokens cannot be told apart")
        }
        return Case(key: key, fillerCharacters: low, tokens: tokens, keyStart: promptTokens.count)
    }

    /// One trial's outcome.
    public struct Trial: Sendable, Hashable, Codable {
        /// The key.
        public var key: Int
        /// The positions of the pass (prompt and key but the key's last token).
        public var length: Int
        /// Characters of filler in the prompt.
        public var fillerCharacters: Int
        /// Whether greedy decoding would write the key: its token has the largest logit at every key position.
        public var retrieved: Bool
        /// The mean log-probability (natural log) of the key's tokens.
        public var keyLogProbability: Double
        /// The log-probability of each of the key's tokens.
        public var keyTokenLogProbabilities: [Double]
    }

    /// Scores `promptCase` with `model` in one pass.
    public static func score(_ promptCase: Case, model: LanguageModel) throws(EngineError) -> Trial {
        let inputs = Array(promptCase.tokens.dropLast())
        let targets = Array(promptCase.tokens.dropFirst())
        let (scores, greedy) = try model.scoresWithGreedy(inputs: inputs, targets: targets)
        let keyTargets = (promptCase.keyStart - 1)..<targets.count
        let keyScores = Array(scores[keyTargets])
        return Trial(
            key: promptCase.key, length: inputs.count, fillerCharacters: promptCase.fillerCharacters,
            retrieved: greedy[keyTargets].allSatisfy { $0 },
            keyLogProbability: keyScores.reduce(0, +) / Double(keyScores.count), keyTokenLogProbabilities: keyScores)
    }

    /// A Wilson score interval for `successes` of `trials` (95 %: z = 1.959964).
    public static func wilson(successes: Int, trials: Int, z: Double = 1.959_963_984_540_054) -> (
        lower: Double, upper: Double
    ) {
        guard trials > 0 else { return (0, 1) }
        let n = Double(trials)
        let p = Double(successes) / n
        let z2 = z * z
        let centre = (p + z2 / (2 * n)) / (1 + z2 / n)
        let half = z / (1 + z2 / n) * (p * (1 - p) / n + z2 / (4 * n * n)).squareRoot()
        return (max(0, centre - half), min(1, centre + half))
    }
}

/// Passkey retrieval of one checkpoint at every length and depth (and under each rotary extension asked for).
public struct PasskeyResult: Sendable, Hashable, Codable {
    /// The checkpoint scored.
    public var checkpoint: String
    /// How the prompts were tokenized: the tokenizer's name, or "bytes".
    public var tokenizer: String
    /// The trained length the lengths are multiples of.
    public var trainedLength: Int
    /// The seed of the keys.
    public var seed: UInt64
    /// Trials per cell.
    public var trials: Int
    /// The depths, in per cent of the filler before the key.
    public var depths: [Double]
    /// Every (series, length, depth), in order.
    public var cells: [Cell]
    /// The engine's version (`LanguageModel.engineVersion`).
    public var engineVersion: String
    /// The arithmetic of the products (`--precision`); `nil` in results stored before it was recorded (float32).
    public var precision: Precision?

    public init(
        checkpoint: String, tokenizer: String, trainedLength: Int, seed: UInt64, trials: Int, depths: [Double],
        cells: [Cell], engineVersion: String, precision: Precision? = nil
    ) {
        self.precision = precision
        self.checkpoint = checkpoint
        self.tokenizer = tokenizer
        self.trainedLength = trainedLength
        self.seed = seed
        self.trials = trials
        self.depths = depths
        self.cells = cells
        self.engineVersion = engineVersion
    }

    /// One length and depth of one series.
    public struct Cell: Sendable, Hashable, Codable {
        /// "model" for the checkpoint as it is, else the rotary extension's name.
        public var series: String
        /// The positions of each pass (at most this; the filler is cut to fit).
        public var length: Int
        /// Per cent of the filler before the key line.
        public var depth: Double
        /// Trials whose key was retrieved.
        public var retrieved: Int
        /// `retrieved / trials.count`.
        public var accuracy: Double
        /// The Wilson 95 % interval of the accuracy.
        public var lower: Double
        public var upper: Double
        /// The mean over trials of the key's mean log-probability (nil for a skipped cell).
        public var keyLogProbability: Double?
        /// Each trial.
        public var trials: [Passkey.Trial]
        /// Why the cell was not run (the prompt is longer than the length; the model is not defined there).
        public var skipped: String?
        /// Tokens per second over the cell's passes.
        public var tokensPerSecond: Double
        /// The seed of the keys and how the prompts were tokenized (a stored cell, read without its result).
        public var seed: UInt64?
        public var tokenizer: String?
    }

    /// Runs every cell: for each series (the model, then each extension), length and depth, `trials` prompts.
    /// - Parameter progress: called after each cell.
    public static func run(
        model: LanguageModel, checkpoint: String, encoding: Passkey.Encoding, lengths: LengthGrid,
        extensions: [RotaryExtension], depths: [Double], trials: Int, seed: UInt64,
        progress: (Cell) -> Void = { _ in }
    ) throws -> PasskeyResult {
        var cells: [Cell] = []
        for (name, modelAt) in try series(of: model, checkpoint: checkpoint, extensions: extensions) {
            for length in lengths.resolve(trainedLength: model.architecture.trainedLength) {
                let scoring = modelAt(length)
                for depth in depths {
                    let cell = try self.cell(
                        series: name, length: length, depth: depth, model: scoring, encoding: encoding,
                        trials: trials, seed: seed)
                    progress(cell)
                    cells.append(cell)
                }
            }
        }
        return PasskeyResult(
            checkpoint: checkpoint, tokenizer: encoding.name, trainedLength: model.architecture.trainedLength,
            seed: seed, trials: trials, depths: depths, cells: cells, engineVersion: LanguageModel.engineVersion,
            precision: model.precision)
    }

    /// The series passkey retrieval runs: "model" (the checkpoint as it is), then each rotary extension, as the
    /// model to score a length with (an extension's factor is the length over the trained length).
    /// - Throws: `EvaluationError.invalidOptions` when extensions are asked of a model without rotary layers.
    public static func series(
        of model: LanguageModel, checkpoint: String, extensions: [RotaryExtension]
    ) throws(EvaluationError) -> [(name: String, modelAt: @Sendable (Int) -> LanguageModel)] {
        let trained = model.architecture.trainedLength
        var series: [(name: String, modelAt: @Sendable (Int) -> LanguageModel)] = [("model", { _ in model })]
        for fix in extensions {
            guard model.replacingRotaryScaling({ _ in fix.scaling(factor: 1, trainedLength: trained) }) != nil else {
                throw .invalidOptions(
                    "\(checkpoint): --extensions applies to rotary models, and \(model.architecture.name) has no "
                        + "rotary layer; drop --extensions")
            }
            series.append(
                (
                    fix.rawValue,
                    { length in
                        model.replacingRotaryScaling({ _ in
                            fix.scaling(factor: Double(length) / Double(trained), trainedLength: trained)
                        }) ?? model
                    }
                ))
        }
        return series
    }

    /// One cell: `trials` prompts of at most `length` positions with the key at `depth`, scored by `model` (already
    /// scaled for the length). A length the model cannot represent, or one shorter than the prompt without filler,
    /// is a skipped cell with the reason.
    public static func cell(
        series: String, length: Int, depth: Double, model: LanguageModel, encoding: Passkey.Encoding, trials: Int,
        seed: UInt64
    ) throws -> Cell {
        var cell = Cell(
            series: series, length: length, depth: depth, retrieved: 0, accuracy: 0, lower: 0, upper: 1,
            keyLogProbability: nil, trials: [], skipped: nil, tokensPerSecond: 0, seed: seed,
            tokenizer: encoding.name)
        if case .unsupported(let reason) = model.support(at: length) {
            cell.skipped = reason
            return cell
        }
        let started = Date()
        var tokens = 0
        for trial in 0..<trials {
            let key = Passkey.key(seed: seed, trial: trial)
            guard let prompt = try Passkey.fitting(length: length, key: key, depth: depth, encoding: encoding) else {
                let bare = encoding.encode(Passkey.prompt(key: key, fillerCharacters: 0, depth: depth))
                cell.skipped = "the prompt without filler takes \(bare.count) tokens, more than \(length)"
                cell.trials = []
                return cell
            }
            cell.trials.append(try Passkey.score(prompt, model: model))
            tokens += prompt.length
        }
        cell.retrieved = cell.trials.filter(\.retrieved).count
        cell.accuracy = Double(cell.retrieved) / Double(max(cell.trials.count, 1))
        (cell.lower, cell.upper) = Passkey.wilson(successes: cell.retrieved, trials: cell.trials.count)
        cell.keyLogProbability = cell.trials.map(\.keyLogProbability).reduce(0, +) / Double(max(cell.trials.count, 1))
        cell.tokensPerSecond = Double(tokens) / max(Date().timeIntervalSince(started), 1e-9)
        return cell
    }
}
