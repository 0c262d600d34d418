import Foundation

/// The one JSON encoding of every report: sorted keys, indented, slashes unescaped, dates in ISO 8601, non-finite
/// numbers as strings
/// (`"inf"`, `"nan"`), so a result with an infinite perplexity still parses.
public enum ReportJSON {
    /// `value` as JSON text.
    public static func encode(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(Self.dateFormatter(fractional: true).string(from: date))
        }
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// ISO 8601 in UTC, with milliseconds when `fractional`.
    static func dateFormatter(fractional: Bool) -> ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions =
            fractional ? [.withInternetDateTime, .withFractionalSeconds] : [.withInternetDateTime]
        return formatter
    }

    /// Decodes what `encode` wrote.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard
                let date = Self.dateFormatter(fractional: true).date(from: text)
                    ?? Self.dateFormatter(fractional: false).date(from: text)
            else {
                throw DecodingError.dataCorrupted(
                    .init(codingPath: decoder.codingPath, debugDescription: "'\(text)' is not an ISO 8601 date"))
            }
            return date
        }
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try decoder.decode(type, from: data)
    }
}

/// The rendering of one command's result. Its JSON document (`Docs/json.md`) is the result value itself.
public protocol ResultReport: Sendable {
    associatedtype Result: Encodable & Sendable
    /// What the command produced.
    var result: Result { get }
}

extension ResultReport {
    /// The JSON document: the result, encoded by `ReportJSON`.
    public func json() throws -> String { try ReportJSON.encode(result) }
}

/// Fixed-width text columns.
public enum TextColumns {
    /// `text` padded to `width`, right-aligned unless `left`.
    public static func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(width - text.count, 0))
        return left ? text + fill : fill + text
    }

    /// One CSV field, quoted when it holds a comma, quote or newline.
    public static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
