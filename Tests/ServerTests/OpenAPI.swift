import Foundation
import TestSupport
import Yams

/// The subset of OpenAPI 3.1 and JSON Schema that Docs/http-api.yaml uses, enough to check a response against it:
/// `$ref`, `type` (one or a list), `properties`, `required`, `additionalProperties`, `items`, `enum`, `oneOf`,
/// `format: date-time`.
struct OpenAPISpec {
    let document: JSONValue

    init(path: String) throws {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        document = try YAMLDecoder().decode(JSONValue.self, from: text)
    }

    /// Every (path template, method) the spec documents, with the statuses it lists.
    var operations: [(path: String, method: String, statuses: [String])] {
        var found: [(String, String, [String])] = []
        for (path, item) in document["paths"]?.object ?? [:] {
            for (method, operation) in item.object ?? [:] where ["get", "post", "put", "delete"].contains(method) {
                found.append((path, method, (operation["responses"]?.object ?? [:]).keys.sorted()))
            }
        }
        return found.sorted { ($0.0, $0.1) < ($1.0, $1.1) }
    }

    /// The template `path` (without its query) matches, e.g. `/api/runs/{run}/checkpoints` for `/api/runs/x/checkpoints`.
    func template(for path: String) -> String? {
        let parts = path.split(separator: "?")[0].split(separator: "/", omittingEmptySubsequences: false)
        return (document["paths"]?.object ?? [:]).keys.first { template in
            let pattern = template.split(separator: "/", omittingEmptySubsequences: false)
            return pattern.count == parts.count
                && zip(pattern, parts).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
        }
    }

    /// Follows a `$ref` inside the document.
    func resolve(_ value: JSONValue) -> JSONValue {
        guard let reference = value["$ref"]?.string, reference.hasPrefix("#/") else { return value }
        var node = document
        for part in reference.dropFirst(2).split(separator: "/") { node = node[String(part)] ?? .null }
        return resolve(node)
    }

    /// What is wrong with a response of `status` and `contentType` to `method` on `path`; empty when it conforms.
    func problems(path: String, method: String, status: Int, contentType: String, body: Data) -> [String] {
        guard let template = template(for: path) else { return ["\(path) is not documented"] }
        guard let operation = document["paths"]?[template]?[method.lowercased()] else {
            return ["\(method) \(template) is not documented"]
        }
        guard let documented = operation["responses"]?["\(status)"] else {
            return ["\(method) \(template): status \(status) is not documented"]
        }
        let response = resolve(documented)
        guard let contents = response["content"]?.object else {
            return body.isEmpty ? [] : ["\(method) \(template) \(status): a body where none is documented"]
        }
        let media = contentType.split(separator: ";")[0].trimmingCharacters(in: .whitespaces)
        guard let content = contents[media] else {
            return ["\(method) \(template) \(status): content type \(media) is not among \(contents.keys.sorted())"]
        }
        guard media == "application/json", let schema = content["schema"] else { return [] }
        let value: JSONValue
        do { value = try JSONValue.parse(body) } catch {
            return ["\(method) \(template) \(status): not JSON: \(error)"]
        }
        return validate(value, against: schema, at: "\(method) \(template) \(status) $")
    }

    func validate(_ value: JSONValue, against schema: JSONValue, at path: String) -> [String] {
        let schema = resolve(schema)
        var problems: [String] = []
        if let choices = schema["oneOf"]?.array {
            let passing = choices.filter { validate(value, against: $0, at: path).isEmpty }.count
            if passing != 1 { problems.append("\(path): matches \(passing) of oneOf's \(choices.count) schemas") }
        }
        if let type = schema["type"] {
            let allowed = type.array?.compactMap(\.string) ?? [type.string ?? ""]
            if !allowed.contains(where: { Self.isA(value, $0) }) {
                return problems + ["\(path): \(Self.describe(value)) is not \(allowed.joined(separator: " or "))"]
            }
        }
        if let choices = schema["enum"]?.array, !choices.contains(value) {
            problems.append("\(path): \(Self.describe(value)) is not one of the enum's values")
        }
        if schema["format"]?.string == "date-time", let text = value.string,
            (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text)) == nil
        {
            problems.append("\(path): '\(text)' is not an ISO 8601 date-time with milliseconds")
        }
        if case .object(let object) = value {
            for key in schema["required"]?.array?.compactMap(\.string) ?? [] where object[key] == nil {
                problems.append("\(path): required '\(key)' is missing")
            }
            let properties = schema["properties"]?.object ?? [:]
            for (key, item) in object {
                if let property = properties[key] {
                    problems += validate(item, against: property, at: "\(path).\(key)")
                } else if let extra = schema["additionalProperties"], extra.object != nil {
                    problems += validate(item, against: extra, at: "\(path).\(key)")
                } else if schema["properties"] != nil {
                    problems.append("\(path): '\(key)' is not documented")
                }
            }
        }
        if case .array(let items) = value, let itemSchema = schema["items"] {
            for (index, item) in items.enumerated() {
                problems += validate(item, against: itemSchema, at: "\(path)[\(index)]")
            }
        }
        return problems
    }

    static func isA(_ value: JSONValue, _ type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("integer", .integer), ("number", .integer), ("number", .number),
            ("string", .string), ("array", .array), ("object", .object):
            true
        default: false
        }
    }

    static func describe(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool(let flag): "\(flag)"
        case .integer(let number): "\(number)"
        case .number(let number): "\(number)"
        case .string(let text): "'\(text)'"
        case .array: "an array"
        case .object: "an object"
        }
    }
}
