import ArgumentParser
import Engine
import Evaluation
import Foundation
import TokenData

/// Options shared by `sweep` and `compare`: the data and how windows are cut.
struct EvaluationOptions: ParsableArguments {
    @Option(help: "A .tokens.zst dataset (or a raw token file with --dtype).") var data: String
    @Option(help: "Raw token files only: uint16 or uint32.") var dtype: String = "uint16"
    @Option(help: "nonoverlapping (the paper's default), sliding:S (stride S), or last-half (llama.cpp).")
    var `protocol`: String = "nonoverlapping"
    @Option(help: "Targets scored at every length (default: 4 × the longest length, at most the data).") var budget: Int?
    @Option(help: "First token of the span to score.") var offset: Int = 0
    @Option(help: "BOS in front of windows: none, first or every (needs --bos-token).") var bos: String = "none"
    @Option(help: "The BOS token id.") var bosToken: Int?
    @Flag(help: "Cut windows inside each document instead of across the stream (.tokens.zst documents).") var perDocument = false
    @Option(help: "Bootstrap resamples for the 95% intervals (0: none).") var bootstrap: Int = 1000
    @Option(help: "Seed of the bootstrap.") var seed: UInt64 = 0

    func validate() throws {
        if EvaluationProtocol(parsing: `protocol`) == nil {
            throw ValidationError("--protocol must be nonoverlapping, sliding:S (S ≥ 1) or last-half")
        }
        guard let placement = BOSPlacement(rawValue: bos) else { throw ValidationError("--bos must be none, first or every") }
        if placement != .none, bosToken == nil { throw ValidationError("--bos \(bos) needs --bos-token") }
        if let budget, budget < 1 { throw ValidationError("--budget must be at least 1") }
        if offset < 0 { throw ValidationError("--offset must not be negative") }
    }

    func windowOptions(length: Int) -> WindowOptions {
        WindowOptions(length: length, protocolKind: EvaluationProtocol(parsing: `protocol`) ?? .nonoverlapping,
                      bos: BOSPlacement(rawValue: bos) ?? .none, bosToken: bosToken.map { Int32($0) }, perDocument: perDocument)
    }

    /// The span `[offset, offset + budget + 1)`, its document starts (relative), and whether it is byte-level.
    func span(longest: Int) throws -> (tokens: [Int32], documents: [Int], byteLevel: Bool) {
        if data.hasSuffix(".tokens.zst") {
            let dataset = try TokenDataset(path: data)
            let available = dataset.count - offset
            let wanted = min(budget.map { $0 + 1 } ?? 4 * longest + 1, available)
            guard wanted >= 2 else { throw EvaluationError.tooFewTokens(available: max(available, 0), needed: 2) }
            if let budget, budget + 1 > available { throw EvaluationError.tooFewTokens(available: available, needed: budget + 1) }
            let tokens = try dataset.tokens(in: offset..<(offset + wanted))
            let documents = [0] + dataset.documentStarts.filter { $0 > offset && $0 < offset + wanted }.map { $0 - offset }
            return (tokens, documents, dataset.metadata.tokenizer == "bytes")
        }
        let all = try TokenFile.read(path: data, dtype: TokenFile.DType(rawValue: dtype) ?? .uint16, offset: offset, count: nil)
        let wanted = min(budget.map { $0 + 1 } ?? 4 * longest + 1, all.count)
        if let budget, budget + 1 > all.count { throw EvaluationError.tooFewTokens(available: all.count, needed: budget + 1) }
        return (Array(all.prefix(wanted)), [0], false)
    }
}

/// Progress with an ETA on stderr, at most once a second.
final class ProgressLine {
    private let started = Date()
    private var last = Date.distantPast
    private var shown = false

    func update(_ fraction: Double, _ label: String) {
        guard Date().timeIntervalSince(last) > 1 else { return }
        last = Date()
        shown = true
        let elapsed = Date().timeIntervalSince(started)
        let eta = fraction > 0 ? elapsed * (1 - fraction) / fraction : 0
        FileHandle.standardError.write(Data(String(format: "\r\u{1B}[K%5.1f%%  %@  elapsed %.0f s, ETA %.0f s", 100 * fraction, label, elapsed, eta).utf8))
    }

    func finish() { if shown { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) } }
}

/// `extrapolate sweep`: perplexity at increasing lengths on the same tokens.
public struct SweepCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Perplexity of one checkpoint at increasing window lengths, on the same tokens.",
        discussion: """
            Every length scores the same span: the first --budget targets after --offset (default 4 × the longest
            length). A window of L input tokens predicts the next L tokens (the paper's fairseq accounting), so
            each target is scored once; perplexity = exp(token-weighted mean NLL). Intervals are 95% bootstrap
            intervals over windows (over documents with --per-document). Lengths a method cannot represent (learned
            positions past their table) are reported as unsupported. See Docs/evaluation.md.
            """
    )

    @Option(parsing: .upToNextOption,
            help: "Checkpoint folders, .safetensors files or indexes (`--checkpoint a b`, or repeated): several share one plot.")
    var checkpoint: [String]
    @Option(help: "Lengths: multiples of the trained length (1x,2x,4x,8x,16x), explicit (512,1024) or L+k.")
    var lengths: String = "1x,2x,4x,8x,16x"
    @OptionGroup var evaluation: EvaluationOptions
    @OptionGroup var engine: EngineOptions
    @Flag(help: "Rotary models: also evaluate linear, ntk, dynamic, yarn and llama3 scaling (factor = length / trained).")
    var extensions = false
    @Flag(help: "Print JSON instead of the table.") var json = false
    @Option(help: "Also write the JSON here.") var jsonOutput: String?
    @Option(help: "Write a CSV (one row per series and length) here.") var csv: String?
    @Option(help: "Write an SVG plot of perplexity against length here (and <name>-positions.svg: loss by position).")
    var svg: String?

    public init() {}

    public func validate() throws {
        if checkpoint.isEmpty { throw ValidationError("give at least one --checkpoint") }
    }

    public func run() throws {
        engine.apply()
        let models = try checkpoint.map { try LanguageModel.load($0) }
        let trained = models[0].architecture.trainedLength
        let grid = try LengthGrid.parse(lengths, trainedLength: trained)
        let (tokens, documents, byteLevel) = try evaluation.span(longest: grid.max() ?? trained)
        // Cost per scored token grows like (projections) + (attention ∝ length); weigh lengths accordingly for the ETA.
        func weight(_ length: Int) -> Double { 1 + Double(length) / 2048 }
        let series = models.reduce(0) { $0 + (extensions && $1.replacingRotaryScaling({ $0.scaling }) != nil ? 1 + Sweep.extensions.count : 1) }
        let totalWork = Double(series) * grid.reduce(0.0) { $0 + weight($1) }
        var doneWork = 0.0
        let progress = ProgressLine()
        var points: [SweepPoint] = []
        for model in models {
            var modelPoints = try Sweep.run(
                model: model, tokens: tokens, documentStarts: documents, lengths: grid, options: evaluation.windowOptions(length: grid[0]),
                byteLevel: byteLevel, extensions: extensions, resamples: evaluation.bootstrap, seed: evaluation.seed
            ) { name, length, done, total in
                let fraction = (doneWork + weight(length) * Double(done) / Double(total)) / totalWork
                if done == total { doneWork += weight(length) }
                progress.update(fraction, "\(model.architecture.name) \(name) at \(length)")
            }
            if models.count > 1 {
                for index in modelPoints.indices {
                    let series = modelPoints[index].series
                    modelPoints[index].series = series == evaluation.windowOptions(length: 1).protocolKind.description
                        ? model.architecture.name : "\(model.architecture.name) \(series)"
                }
            }
            points += modelPoints
        }
        progress.finish()
        let names = models.map(\.architecture.name).joined(separator: ", ")
        let report = SweepReport(checkpoint: checkpoint.joined(separator: ", "), data: evaluation.data, architecture: names,
                                 trainedLength: trained, scoredTokens: tokens.count - 1, points: points)
        let encoded = try report.json()
        if let jsonOutput { try encoded.write(toFile: jsonOutput, atomically: true, encoding: .utf8) }
        if let csv { try report.csv().write(toFile: csv, atomically: true, encoding: .utf8) }
        if let svg {
            try report.perplexitySVG().write(toFile: svg, atomically: true, encoding: .utf8)
            let positions = svg.hasSuffix(".svg") ? String(svg.dropLast(4)) + "-positions.svg" : svg + "-positions.svg"
            try report.positionsSVG().write(toFile: positions, atomically: true, encoding: .utf8)
        }
        print(json ? encoded : report.table())
    }
}

/// What `sweep` writes.
struct SweepReport: Codable {
    var checkpoint: String
    var data: String
    var architecture: String
    var trainedLength: Int
    var scoredTokens: Int
    var points: [SweepPoint]

    func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    func table() -> String {
        var lines = ["\(architecture) (trained at \(trainedLength)) on \(data): \(scoredTokens) targets at every length", ""]
        let bits = points.contains { $0.result?.bitsPerByte != nil }
        func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(width - text.count, 0))
            return left ? text + fill : fill + text
        }
        var header = pad("series", 15, left: true) + pad("length", 8) + pad("×trained", 9) + pad("tokens", 9) + pad("NLL", 10)
        header += pad("perplexity", 13) + "  " + pad("95% CI", 25, left: true) + pad("seconds", 8) + (bits ? pad("bits/byte", 11) : "")
        lines.append(header)
        for point in points {
            let prefix = pad(point.series, 15, left: true) + pad("\(point.length)", 8)
                + pad(String(format: "%.2f", Double(point.length) / Double(trainedLength)), 9)
            guard let result = point.result else {
                lines.append(prefix + "  unsupported: " + (point.unsupported ?? "?"))
                continue
            }
            let interval = point.interval.map { String(format: "[%.4g, %.4g]", $0.lower, $0.upper) } ?? "-"
            var line = prefix + pad("\(result.tokens)", 9) + pad(String(format: "%.4f", result.meanNLL), 10)
            line += pad(String(format: "%.4g", result.perplexity), 13) + "  " + pad(interval, 25, left: true)
            line += pad(String(format: "%.1f", result.seconds), 8) + (result.bitsPerByte.map { pad(String(format: "%.4f", $0), 11) } ?? "")
            lines.append(line)
        }
        lines.append("")
        if let name = points.lazy.compactMap({ $0.result?.protocolName }).first {
            lines.append("perplexity = exp(token-weighted mean NLL); protocol \(name)")
        } else {
            lines.append("no length could be evaluated")
        }
        return lines.joined(separator: "\n")
    }

    func csv() -> String {
        var rows = ["series,length,trained_length,tokens,mean_nll,perplexity,ci_lower,ci_upper,window_averaged_perplexity,bits_per_byte,seconds,unsupported"]
        for p in points {
            let r = p.result
            let fields: [String] = [
                p.series, "\(p.length)", "\(trainedLength)", r.map { "\($0.tokens)" } ?? "", r.map { "\($0.meanNLL)" } ?? "",
                r.map { "\($0.perplexity)" } ?? "", p.interval.map { "\($0.lower)" } ?? "", p.interval.map { "\($0.upper)" } ?? "",
                r.map { "\($0.windowAveragedPerplexity)" } ?? "", r?.bitsPerByte.map { "\($0)" } ?? "", r.map { "\($0.seconds)" } ?? "",
                p.unsupported.map { "\"\($0.replacingOccurrences(of: "\"", with: "\"\""))\"" } ?? "",
            ]
            rows.append(fields.joined(separator: ","))
        }
        return rows.joined(separator: "\n") + "\n"
    }

    func perplexitySVG() -> String {
        let names = points.map(\.series).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        let series = names.map { name in
            Plot.Series(name: name, points: points.filter { $0.series == name }.compactMap { p in
                p.result.map { (x: Double(p.length), y: $0.perplexity) }
            })
        }
        return Plot.svg(title: "perplexity by window length (\(data.split(separator: "/").last ?? ""))", xLabel: "window length (tokens, log scale)",
                        yLabel: "perplexity", series: series, logY: true, markers: [(Double(trainedLength), "trained length")])
    }

    func positionsSVG() -> String {
        let names = points.map(\.series).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        let series: [Plot.Series]
        if names.count == 1 {
            series = points.compactMap { p -> Plot.Series? in
                guard let result = p.result else { return nil }
                return Plot.Series(name: "L = \(p.length)", points: result.positions.map { (x: Double($0.lower + $0.upper) / 2 + 1, y: $0.meanNLL) })
            }
        } else {
            // Several series: each at its longest evaluated length.
            series = names.compactMap { name -> Plot.Series? in
                guard let p = points.filter({ $0.series == name && $0.result != nil }).max(by: { $0.length < $1.length }),
                      let result = p.result else { return nil }
                return Plot.Series(name: "\(name), L = \(p.length)",
                                   points: result.positions.map { (x: Double($0.lower + $0.upper) / 2 + 1, y: $0.meanNLL) })
            }
        }
        return Plot.svg(title: "loss by position in the window", xLabel: "position in window (log scale)",
                        yLabel: "mean NLL (nats)", series: series, markers: [(Double(trainedLength), "trained length")])
    }
}

/// `extrapolate compare A B`: paired comparison of two checkpoints on the same windows.
public struct CompareCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare two checkpoints on the same tokens and windows, with a paired bootstrap interval.",
        discussion: """
            Both checkpoints score exactly the same windows. The difference is B's mean NLL minus A's (negative:
            B is better); the 95% interval comes from resampling windows (documents with --per-document) jointly
            for A and B, which is far tighter than comparing two separate intervals.
            """
    )

    @Argument(help: "Checkpoint A.") var a: String
    @Argument(help: "Checkpoint B.") var b: String
    @Option(help: "Window length (default: A's trained length).") var length: Int?
    @OptionGroup var evaluation: EvaluationOptions
    @OptionGroup var engine: EngineOptions
    @Flag(help: "Print JSON.") var json = false

    public init() {}

    public func run() throws {
        engine.apply()
        let modelA = try LanguageModel.load(a), modelB = try LanguageModel.load(b)
        let length = self.length ?? modelA.architecture.trainedLength
        let (tokens, documents, byteLevel) = try evaluation.span(longest: length)
        let options = evaluation.windowOptions(length: length)
        for (path, model) in [(a, modelA), (b, modelB)] {
            if case .unsupported(let reason) = model.support(at: length) { throw ValidationError("\(path): \(reason)") }
        }
        let resultA = try Evaluator.evaluate(model: modelA, tokens: tokens, documentStarts: documents, options: options, byteLevel: byteLevel)
        let resultB = try Evaluator.evaluate(model: modelB, tokens: tokens, documentStarts: documents, options: options, byteLevel: byteLevel)
        let comparison = try Bootstrap.compare(resultA, resultB, resamples: max(evaluation.bootstrap, 10), seed: evaluation.seed)
        if json {
            let object: [String: Any] = [
                "a": a, "b": b, "length": length, "tokens": resultA.tokens, "perplexityA": resultA.perplexity,
                "perplexityB": resultB.perplexity, "meanNLLDifference": comparison.meanDifference,
                "interval": [comparison.interval.lower, comparison.interval.upper], "unit": comparison.interval.unit,
                "fractionBBetter": comparison.fractionBBetter, "resamples": comparison.interval.resamples, "seed": comparison.interval.seed,
            ]
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted]), as: UTF8.self))
            return
        }
        print("""
            A  \(a): perplexity \(String(format: "%.4f", resultA.perplexity))
            B  \(b): perplexity \(String(format: "%.4f", resultB.perplexity))
            \(resultA.tokens) targets, windows of \(length), \(options.protocolKind)
            B − A mean NLL  \(String(format: "%+.5f", comparison.meanDifference)) nats  95% CI [\(String(format: "%+.5f", comparison.interval.lower)), \(String(format: "%+.5f", comparison.interval.upper))] (paired bootstrap over \(comparison.interval.unit), \(comparison.interval.resamples) resamples, seed \(comparison.interval.seed))
            B / A perplexity \(String(format: "%.4f", comparison.perplexityRatio)); B better in \(String(format: "%.1f", 100 * comparison.fractionBBetter))% of resamples
            """)
    }
}
