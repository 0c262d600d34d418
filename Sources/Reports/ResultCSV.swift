import Engine
import Evaluation
import Foundation

/// The one CSV layout of results: `sweep --csv`, `results --csv`, `/api/results?format=csv` and the nightly report
/// write the same columns, so a spreadsheet or script reads any of them alike.
public enum ResultCSV {
    /// The columns, in order.
    public static let header = [
        "run", "checkpoint", "step", "series", "protocol", "length", "trained_length", "trained_length_source",
        "multiple", "outcome", "tokens", "windows", "mean_nll", "perplexity", "ci_lower", "ci_upper",
        "window_averaged_perplexity", "bits_per_byte", "seconds", "reason", "warnings", "data", "data_checksum",
        "config_not_read", "precision",
    ].joined(separator: ",")

    /// A sweep's point.
    static func row(_ p: SweepPoint, evaluationProtocol: String) -> String {
        line(
            p.run, p.checkpoint, p.step, p.series, evaluationProtocol, p.length, p.trainedLength, p.trainedLengthSource,
            p.multiple, p.unsupported == nil ? "evaluated" : "unsupported", p.result, p.interval,
            p.result?.seconds, p.unsupported, p.warnings, p.data, configNotRead: p.configNotRead,
            precision: p.computedPrecision)
    }

    /// A stored result.
    static func row(_ r: StoredResultsReport.Row) -> String {
        line(
            r.run, r.checkpoint, r.step, r.series, r.evaluationProtocol, r.length, r.trainedLength,
            r.trainedLengthSource,
            r.multiple, r.outcome.rawValue, r.result, r.interval, r.seconds, r.reason, r.warnings, r.data,
            tokens: r.tokens, meanNLL: r.meanNLL, perplexity: r.perplexity, configNotRead: r.configNotRead,
            precision: r.precision)
    }

    private static func line(
        _ run: String, _ checkpoint: String, _ step: Int?, _ series: String, _ evaluationProtocol: String,
        _ length: Int, _ trainedLength: Int, _ source: String?, _ multiple: Double, _ outcome: String,
        _ result: EvaluationResult?, _ interval: Interval?, _ seconds: Double?, _ reason: String?,
        _ warnings: [String], _ data: DataReference?, tokens: Int? = nil, meanNLL: Double? = nil,
        perplexity: Double? = nil, configNotRead: [String]? = nil, precision: Precision
    ) -> String {
        func number(_ value: Double?) -> String { value.map { "\($0)" } ?? "" }
        let scored: Int? = tokens ?? result?.tokens
        let windows: String = result.map { String(Bootstrap.unitCount($0).count) } ?? ""
        let identity: [String] = [
            run, checkpoint, step.map(String.init) ?? "", series, evaluationProtocol, String(length),
            String(trainedLength), source ?? "", String(multiple), outcome,
        ]
        let numbers: [String] = [
            scored.map(String.init) ?? "", windows, number(meanNLL ?? result?.meanNLL),
            number(perplexity ?? result?.perplexity), number(interval?.lower), number(interval?.upper),
            number(result?.windowAveragedPerplexity), number(result?.bitsPerByte), number(seconds),
        ]
        let notes: [String] = [
            reason ?? "", warnings.joined(separator: "; "), data?.path ?? "", data?.checksum ?? "",
            (configNotRead ?? []).joined(separator: "; "), precision.rawValue,
        ]
        let fields = identity + numbers + notes
        return fields.map(TextColumns.csvField).joined(separator: ",")
    }
}
