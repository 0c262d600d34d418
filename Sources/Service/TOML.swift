import Foundation

/// A TOML value, as far as configuration files need: strings, integers, floats, booleans, arrays and tables.
public indirect enum TOMLValue: Sendable, Hashable {
    case string(String)
    case integer(Int)
    case float(Double)
    case boolean(Bool)
    case array([TOMLValue])
    case table([String: TOMLValue])

    /// What the value is, for error messages.
    var kind: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .float: "a number"
        case .boolean: "a boolean"
        case .array: "an array"
        case .table: "a table"
        }
    }
}

/// A reader of the TOML the configuration uses: `key = value` pairs with comments, `[table]` headers,
/// `[[array.of.tables]]`, dotted keys, basic and literal strings (with escapes), integers (with `_`), floats,
/// booleans, and arrays over several lines. Dates and inline tables are not configuration values here and are
/// refused with the line they are on. (Written here rather than taken from TOMLKit, whose manifest needs a package
/// this project's mirror lacks.)
public struct TOMLReader {
    private let lines: [Substring]
    private let file: String

    /// Parses `text` (from `file`, named in errors).
    public static func parse(_ text: String, file: String) throws(ConfigurationError) -> [String: TOMLValue] {
        var reader = TOMLReader(lines: text.split(separator: "\n", omittingEmptySubsequences: false), file: file)
        return try reader.document()
    }

    private init(lines: [Substring], file: String) {
        self.lines = lines
        self.file = file
    }

    private mutating func document() throws(ConfigurationError) -> [String: TOMLValue] {
        var root: [String: TOMLValue] = [:]
        var current: [String] = []
        var index = 0
        while index < lines.count {
            let number = index + 1
            var cursor = Cursor(text: Array(lines[index].unicodeScalars), line: number, file: file)
            index += 1
            cursor.skipSpace()
            if cursor.atEnd || cursor.peek == "#" { continue }
            if cursor.peek == "[" {
                let isArray = cursor.peek(at: 1) == "["
                cursor.advance(isArray ? 2 : 1)
                let path = try cursor.keyPath()
                cursor.skipSpace()
                guard cursor.take("]"), !isArray || cursor.take("]") else {
                    throw cursor.error("expected '\(isArray ? "]]" : "]")' after the table name")
                }
                try cursor.expectLineEnd()
                current = path
                try Self.open(path, array: isArray, in: &root, line: number, file: file)
                continue
            }
            let key = try cursor.keyPath()
            cursor.skipSpace()
            guard cursor.take("=") else {
                throw cursor.error("expected '=' after the key '\(key.joined(separator: "."))'")
            }
            cursor.skipSpace()
            let value = try cursor.value { () -> [Unicode.Scalar]? in
                guard index < lines.count else { return nil }
                defer { index += 1 }
                return Array(lines[index].unicodeScalars)
            }
            try cursor.expectLineEnd()
            try Self.assign(value, at: current + key, in: &root, line: number, file: file)
        }
        return root
    }

    /// Creates the table at `path` (or appends a table to the array there).
    private static func open(
        _ path: [String], array: Bool, in root: inout [String: TOMLValue], line: Int, file: String
    ) throws(ConfigurationError) {
        try update(&root, path: path[...], line: line, file: file) {
            (slot: inout TOMLValue?) throws(ConfigurationError) in
            switch (slot, array) {
            case (nil, false): slot = .table([:])
            case (nil, true): slot = .array([.table([:])])
            case (.array(var items), true):
                items.append(.table([:]))
                slot = .array(items)
            case (.table, false):
                break
            default:
                throw ConfigurationError.syntax(
                    file: file, line: line, reason: "'\(path.joined(separator: "."))' is already defined")
            }
        }
    }

    private static func assign(
        _ value: TOMLValue, at path: [String], in root: inout [String: TOMLValue], line: Int, file: String
    ) throws(ConfigurationError) {
        try update(&root, path: path[...], line: line, file: file) {
            (slot: inout TOMLValue?) throws(ConfigurationError) in
            guard slot == nil else {
                throw ConfigurationError.syntax(
                    file: file, line: line, reason: "the key '\(path.joined(separator: "."))' is given twice")
            }
            slot = value
        }
    }

    /// Walks `path` from `table` (into the last table of an array of tables) and lets `body` change the last slot.
    private static func update(
        _ table: inout [String: TOMLValue], path: ArraySlice<String>, line: Int, file: String,
        _ body: (inout TOMLValue?) throws(ConfigurationError) -> Void
    ) throws(ConfigurationError) {
        guard let first = path.first else { return }
        if path.count == 1 {
            var slot = table[first]
            try body(&slot)
            table[first] = slot
            return
        }
        switch table[first] {
        case nil:
            var inner: [String: TOMLValue] = [:]
            try update(&inner, path: path.dropFirst(), line: line, file: file, body)
            table[first] = .table(inner)
        case .table(var inner):
            try update(&inner, path: path.dropFirst(), line: line, file: file, body)
            table[first] = .table(inner)
        case .array(var items):
            guard case .table(var inner) = items.last else { fallthrough }
            try update(&inner, path: path.dropFirst(), line: line, file: file, body)
            items[items.count - 1] = .table(inner)
            table[first] = .array(items)
        default:
            throw ConfigurationError.syntax(file: file, line: line, reason: "'\(first)' is not a table")
        }
    }
}

/// A position in one line of the file.
private struct Cursor {
    var text: [Unicode.Scalar]
    var position = 0
    var line: Int
    let file: String

    init(text: [Unicode.Scalar], line: Int, file: String) {
        self.text = text
        self.line = line
        self.file = file
    }

    var atEnd: Bool { position >= text.count }
    var peek: Unicode.Scalar? { atEnd ? nil : text[position] }
    func peek(at offset: Int) -> Unicode.Scalar? { position + offset < text.count ? text[position + offset] : nil }
    mutating func advance(_ count: Int = 1) { position += count }

    mutating func take(_ scalar: Unicode.Scalar) -> Bool {
        guard peek == scalar else { return false }
        position += 1
        return true
    }

    mutating func skipSpace() {
        while let c = peek, c == " " || c == "\t" || c == "\r" { position += 1 }
    }

    func error(_ reason: String) -> ConfigurationError {
        .syntax(file: file, line: line, reason: reason)
    }

    mutating func expectLineEnd() throws(ConfigurationError) {
        skipSpace()
        guard atEnd || peek == "#" else { throw error("unexpected text after the value") }
    }

    /// `a.b."c d"`.
    mutating func keyPath() throws(ConfigurationError) -> [String] {
        var parts: [String] = []
        repeat {
            skipSpace()
            if peek == "\"" || peek == "'" {
                parts.append(try string())
            } else {
                var key = ""
                while let c = peek, c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "-" || c == "_" {
                    key.unicodeScalars.append(c)
                    position += 1
                }
                guard !key.isEmpty else { throw error("expected a key") }
                parts.append(key)
            }
            skipSpace()
        } while take(".")
        return parts
    }

    /// How deep arrays may nest (found by fuzzing: `[[[[…` 100,000 deep overflowed the stack). No configuration
    /// needs more than two.
    static let maximumDepth = 64

    /// A value; arrays may continue on the lines `nextLine` hands out.
    mutating func value(nextLine: () -> [Unicode.Scalar]?, depth: Int = 0) throws(ConfigurationError) -> TOMLValue {
        guard let c = peek else { throw error("expected a value") }
        switch c {
        case "\"", "'": return .string(try string())
        case "[":
            guard depth < Self.maximumDepth else { throw error("arrays nested more than \(Self.maximumDepth) deep") }
            return try array(nextLine: nextLine, depth: depth + 1)
        case "{": throw error("inline tables are not supported here; use a [table] section")
        default: return try scalar()
        }
    }

    private mutating func array(nextLine: () -> [Unicode.Scalar]?, depth: Int) throws(ConfigurationError)
        -> TOMLValue
    {
        advance()
        var items: [TOMLValue] = []
        while true {
            try skipBlank(nextLine: nextLine)
            if take("]") { return .array(items) }
            items.append(try value(nextLine: nextLine, depth: depth))
            try skipBlank(nextLine: nextLine)
            if take(",") { continue }
            guard take("]") else { throw error("expected ',' or ']' in the array") }
            return .array(items)
        }
    }

    /// Skips spaces, comments and line ends inside an array.
    private mutating func skipBlank(nextLine: () -> [Unicode.Scalar]?) throws(ConfigurationError) {
        while true {
            skipSpace()
            if !atEnd && peek != "#" { return }
            guard let next = nextLine() else { throw error("the array is not closed") }
            text = next
            position = 0
            line += 1
        }
    }

    private mutating func string() throws(ConfigurationError) -> String {
        let quote = text[position]
        advance()
        var result = ""
        while let c = peek {
            advance()
            if c == quote { return result }
            if c == "\\" && quote == "\"" {
                guard let e = peek else { break }
                advance()
                switch e {
                case "n": result += "\n"
                case "t": result += "\t"
                case "\"": result += "\""
                case "\\": result += "\\"
                case "u", "U":
                    let count = e == "u" ? 4 : 8
                    guard position + count <= text.count,
                        let code = UInt32(
                            String(String.UnicodeScalarView(text[position..<position + count])), radix: 16),
                        let scalar = Unicode.Scalar(code)
                    else { throw error("bad \\\(e) escape") }
                    result.unicodeScalars.append(scalar)
                    advance(count)
                default: throw error("unknown escape \\\(e)")
                }
            } else {
                result.unicodeScalars.append(c)
            }
        }
        throw error("the string is not closed on its line")
    }

    private mutating func scalar() throws(ConfigurationError) -> TOMLValue {
        var word = ""
        while let c = peek, c != ",", c != "]", c != "#", c != " ", c != "\t", c != "\r" {
            word.unicodeScalars.append(c)
            advance()
        }
        switch word {
        case "true": return .boolean(true)
        case "false": return .boolean(false)
        default: break
        }
        let digits = word.replacingOccurrences(of: "_", with: "")
        if let integer = Int(digits) { return .integer(integer) }
        if let float = Double(digits), !digits.isEmpty, digits.allSatisfy({ "0123456789+-.eE".contains($0) }) {
            return .float(float)
        }
        throw error(
            word.isEmpty
                ? "expected a value" : "'\(word)' is not a value (strings need quotes; dates are not supported here)")
    }
}
