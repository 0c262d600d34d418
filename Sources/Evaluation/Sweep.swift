import Architecture
import Engine
import Foundation

/// Length grids for sweeps.
public enum LengthGrid {
    /// Parses `1x,2x,4x` (multiples of the trained length), `L+k` (the paper's grid: L + 0, 1, 10, 20…100, 200…1000,
    /// 2000…15000) or explicit lengths `512,1024`.
    public static func parse(_ text: String, trainedLength: Int) throws(EvaluationError) -> [Int] {
        if text == "L+k" {
            let ks = [0, 1] + stride(from: 10, through: 100, by: 10) + stride(from: 200, through: 1000, by: 100)
                + stride(from: 2000, through: 15000, by: 1000)
            return ks.map { trainedLength + $0 }
        }
        var lengths: [Int] = []
        for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            if part.hasSuffix("x"), let multiple = Double(part.dropLast()), multiple > 0 {
                lengths.append(Int((multiple * Double(trainedLength)).rounded()))
            } else if let length = Int(part), length >= 2 {
                lengths.append(length)
            } else {
                throw .invalidOptions("cannot read length '\(part)'; use multiples like 2x, explicit lengths like 1024, or L+k")
            }
        }
        guard !lengths.isEmpty else { throw .invalidOptions("no lengths given") }
        return lengths
    }
}

/// One point of a sweep: a series (protocol or rotary extension) at one length.
public struct SweepPoint: Sendable, Hashable, Codable {
    public var series: String
    public var length: Int
    public var result: EvaluationResult?
    public var interval: Interval?
    /// Why the length was not evaluated (learned positions past their table).
    public var unsupported: String?
}

public enum Sweep {
    /// The rotary extensions a sweep can add, with factor = length / trained length.
    public static let extensions = ["linear", "ntk", "dynamic", "yarn", "llama3"]

    static func scaling(_ name: String, factor: Double, trainedLength: Int, rotary: Rotary) -> RotaryScaling {
        let s = max(factor, 1)
        switch name {
        case "linear": return .linear(factor: s)
        case "ntk": return .ntk(factor: s)
        case "dynamic": return .dynamic(factor: s, originalLength: trainedLength)
        case "yarn": return .yarn(YaRN(factor: s, originalLength: trainedLength))
        default: return .llama3(Llama3Scaling(factor: s, originalLength: trainedLength))
        }
    }

    /// Evaluates every length on the same span of tokens; with `extensions`, also each rotary extension.
    public static func run(
        model: LanguageModel, tokens: [Int32], documentStarts: [Int], lengths: [Int], options: WindowOptions,
        byteLevel: Bool, extensions: Bool, resamples: Int, seed: UInt64, progress: ((String, Int, Int, Int) -> Void)? = nil
    ) throws -> [SweepPoint] {
        var series: [(String, (Int) -> LanguageModel?)] = [(options.protocolKind.description, { _ in model })]
        if extensions, model.replacingRotaryScaling({ $0.scaling }) != nil {
            let trained = model.architecture.trainedLength
            for name in Self.extensions {
                series.append((name, { length in
                    model.replacingRotaryScaling { rotary in
                        scaling(name, factor: Double(length) / Double(trained), trainedLength: trained, rotary: rotary)
                    }
                }))
            }
        }
        var points: [SweepPoint] = []
        for (name, variant) in series {
            for length in lengths {
                if case .unsupported(let reason) = model.support(at: length) {
                    points.append(SweepPoint(series: name, length: length, unsupported: reason))
                    continue
                }
                guard let evaluated = variant(length) else { continue }
                var windowOptions = options
                windowOptions.length = length
                let result = try Evaluator.evaluate(model: evaluated, tokens: tokens, documentStarts: documentStarts,
                                                    options: windowOptions, byteLevel: byteLevel) { done, total in
                    progress?(name, length, done, total)
                }
                points.append(SweepPoint(series: name, length: length, result: result,
                                         interval: Bootstrap.perplexityInterval(result, resamples: resamples, seed: seed)))
            }
        }
        return points
    }
}
