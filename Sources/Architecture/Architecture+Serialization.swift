import Foundation

extension Architecture {
    /// Canonical JSON: sorted keys, no extra whitespace. Equal architectures give equal bytes.
    public func canonicalJSON() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    /// `value`'s canonical JSON (sorted keys), the bytes results' keys are hashes of. Non-finite numbers are written
    /// as strings, so a plain value's encoding cannot fail; were it ever to, the bytes are the value's full
    /// description instead: still one hash per value, never the hash of empty bytes shared by every value that failed.
    public static func hashedBytes(of value: some Encodable) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do {
            return try encoder.encode(value)
        } catch {
            return Data("unencodable \(String(reflecting: value))".utf8)
        }
    }

    /// Human-readable JSON (sorted keys, indented): the form `Docs/architecture-json.md` documents.
    public func prettyJSON() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    /// SHA-256 of the canonical JSON with the name cleared: two declarations that compute the same function
    /// with the same tensor names hash alike whatever they are called. Results are keyed by it.
    public var contentHash: String {
        var unnamed = self
        unnamed.name = ""
        return SHA256.hex(Architecture.hashedBytes(of: unnamed))
    }

    /// Decodes the JSON form.
    /// - Throws: `ArchitectureError.unreadable` naming `path` and what is wrong.
    public static func decode(json data: Data, path: String = "<architecture JSON>") throws(ArchitectureError)
        -> Architecture
    {
        do {
            return try JSONDecoder().decode(Architecture.self, from: data)
        } catch let error as DecodingError {
            throw .unreadable(path: path, reason: DecodingFailure.describe(error, data: data))
        } catch {
            throw .unreadable(path: path, reason: "\(error)")
        }
    }

    /// Whether every part of the architecture is defined for windows of `length` tokens.
    /// Learned absolute positions are unsupported past their table; everything else is defined at any length.
    public func support(at length: Int) -> Support {
        var result = Support.supported
        _ = Walk.visit(layers, expandRepeats: false) { visit in
            if case .positionEmbedding(let node) = visit.layer, case .unsupported = node.encoding.support(at: length) {
                result = node.encoding.support(at: length)
            }
        }
        return result
    }
}

/// Turns `DecodingError`s into one readable line with the JSON path.
enum DecodingFailure {
    /// `error` in words; with the document's bytes, a JSON syntax error also says the line and column
    /// (Foundation only gives a character offset).
    static func describe(_ error: DecodingError, data: Data? = nil) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return keys.isEmpty ? "top level" : String(keys.drop { $0 == "." })
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "missing key '\(key.stringValue)' at \(path(context))"
        case .typeMismatch(let type, let context):
            return "wrong type at \(path(context)): expected \(type); \(context.debugDescription)"
        case .valueNotFound(let type, let context):
            return "null at \(path(context)) where \(type) was expected"
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty, let data, let syntax = syntaxError(in: data) { return syntax }
            let underlying = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
            return "\(context.debugDescription) at \(path(context))" + (underlying.map { " (\($0))" } ?? "")
        @unknown default:
            return "\(error)"
        }
    }

    /// `not valid JSON at line L, column C: …` when `data` does not parse, else `nil`. Foundation's decoder does not
    /// say where a syntax error is; its parser gives a character offset, turned into a line and column here.
    static func syntaxError(in data: Data) -> String? {
        do { _ = try JSONSerialization.jsonObject(with: data, options: .fragmentsAllowed) } catch {
            let message = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
            return "not valid JSON" + (lineAndColumn(of: message, in: data).map { " at \($0)" } ?? "") + ": \(message)"
        }
        return nil
    }

    /// `line L, column C` (1-based) of the offset a Foundation JSON message names ("… around character 19.").
    static func lineAndColumn(of message: String, in data: Data) -> String? {
        guard let range = message.range(of: "character ") else { return nil }
        let digits = message[range.upperBound...].prefix { $0.isNumber }
        guard let offset = Int(digits), offset <= data.count else { return nil }
        var line = 1, column = 1
        for byte in data.prefix(offset) {
            if byte == UInt8(ascii: "\n") { line += 1; column = 1 } else if byte & 0xC0 != 0x80 { column += 1 }
        }
        return "line \(line), column \(column)"
    }
}
