// The split patterns of byte-level BPE tokenizers, matched by hand over Unicode scalars.
//
// `tokenizers` runs these with Oniguruma (ByteLevel) or fancy-regex (Split); Swift's `Regex` matches grapheme
// clusters by default and is slow on long texts, so each pattern the supported families use is written out here
// as the regex engine evaluates it: alternatives tried in order at each position, the first that matches wins,
// with the backtracking of `\s+(?!\S)` and `\s*[\r\n]+` spelled out. A pattern not in this list is an error naming
// it, never an approximation.

/// One of the known split patterns.
enum SplitPattern: Sendable, Hashable {
    /// GPT-2 (ByteLevel's own): `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
    case gpt2
    /// Llama-3 (`\p{N}{1,3}`) and Qwen2 (`\p{N}`): `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,K}|
    /// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`.
    case llama3(digits: Int)

    static let gpt2Source = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static func llama3Source(digits: Int) -> String {
        let count = digits == 1 ? "" : "{1,\(digits)}"
        return #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"# + count
            + #"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    }

    /// The pattern whose source is `source`, if it is one of these.
    init?(source: String) {
        switch source {
        case Self.gpt2Source: self = .gpt2
        case Self.llama3Source(digits: 3): self = .llama3(digits: 3)
        case Self.llama3Source(digits: 1): self = .llama3(digits: 1)
        default: return nil
        }
    }

    /// The ranges of `text` the pattern matches, in order (they cover every scalar for these patterns).
    func matches(_ text: [Unicode.Scalar]) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var position = 0
        while position < text.count {
            let end = match(text, at: position) ?? (position + 1)
            ranges.append(position..<end)
            position = end
        }
        return ranges
    }

    /// The end of the match starting at `i`, or `nil` when no alternative matches there.
    func match(_ t: [Unicode.Scalar], at i: Int) -> Int? {
        switch self {
        case .gpt2:
            if let end = contraction(t, i, ignoringCase: false) { return end }
            if let end = optionalSpace(t, i, then: isLetter) { return end }
            if let end = optionalSpace(t, i, then: isNumber) { return end }
            if let end = optionalSpace(t, i, then: isOther) { return end }
            return whitespace(t, i)
        case .llama3(let digits):
            if let end = contraction(t, i, ignoringCase: true) { return end }
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if i + 1 < t.count, !isNewline(t[i]), !isLetter(t[i]), !isNumber(t[i]), isLetter(t[i + 1]) {
                return run(t, from: i + 1, while: isLetter)
            }
            if isLetter(t[i]) { return run(t, from: i, while: isLetter) }
            // \p{N}{1,K}
            if isNumber(t[i]) { return min(run(t, from: i, while: isNumber), i + digits) }
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            if let end = optionalSpace(t, i, then: isOther) { return run(t, from: end, while: isNewline) }
            // \s*[\r\n]+: up to the last newline of the whitespace run.
            let spaces = run(t, from: i, while: isWhitespace)
            if let last = (i..<spaces).last(where: { isNewline(t[$0]) }) { return last + 1 }
            return whitespace(t, i)
        }
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d`, optionally case-insensitive.
    private func contraction(_ t: [Unicode.Scalar], _ i: Int, ignoringCase: Bool) -> Int? {
        guard t[i] == "'", i + 1 < t.count else { return nil }
        func letter(_ k: Int, _ expected: Unicode.Scalar) -> Bool {
            guard k < t.count else { return false }
            if t[k] == expected { return true }
            guard ignoringCase else { return false }
            return t[k].properties.lowercaseMapping == String(expected)
                || (expected == "s" && t[k] == "\u{017F}")  // ſ folds to s
                || (expected == "k" && t[k] == "\u{212A}")  // the Kelvin sign folds to k
        }
        for suffix in ["s", "t", "re", "ve", "m", "ll", "d"] {
            let scalars = Array(suffix.unicodeScalars)
            if scalars.indices.allSatisfy({ letter(i + 1 + $0, scalars[$0]) }) { return i + 1 + scalars.count }
        }
        return nil
    }

    /// ` ?X+`: an optional U+0020, then a run of `class`.
    private func optionalSpace(_ t: [Unicode.Scalar], _ i: Int, then kind: (Unicode.Scalar) -> Bool) -> Int? {
        if t[i] == " ", i + 1 < t.count, kind(t[i + 1]) { return run(t, from: i + 1, while: kind) }
        if kind(t[i]) { return run(t, from: i, while: kind) }
        return nil
    }

    /// `\s+(?!\S)|\s+`: a whitespace run, leaving its last scalar to the next token when a non-space follows.
    private func whitespace(_ t: [Unicode.Scalar], _ i: Int) -> Int? {
        guard isWhitespace(t[i]) else { return nil }
        let end = run(t, from: i, while: isWhitespace)
        if end == t.count || end - 1 == i { return end }
        return end - 1
    }

    private func run(_ t: [Unicode.Scalar], from i: Int, while kind: (Unicode.Scalar) -> Bool) -> Int {
        var end = i
        while end < t.count, kind(t[end]) { end += 1 }
        return end
    }
}

/// `\p{L}`: any letter (Lu, Ll, Lt, Lm, Lo).
func isLetter(_ c: Unicode.Scalar) -> Bool {
    if c.isASCII { return (c.value | 0x20) >= 0x61 && (c.value | 0x20) <= 0x7A }
    switch c.properties.generalCategory {
    case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
    default: return false
    }
}

/// `\p{N}`: any number (Nd, Nl, No).
func isNumber(_ c: Unicode.Scalar) -> Bool {
    if c.isASCII { return c.value >= 0x30 && c.value <= 0x39 }
    switch c.properties.generalCategory {
    case .decimalNumber, .letterNumber, .otherNumber: return true
    default: return false
    }
}

/// `\s`: Unicode White_Space.
func isWhitespace(_ c: Unicode.Scalar) -> Bool {
    if c.isASCII { return c == " " || (c.value >= 0x09 && c.value <= 0x0D) }
    return c.properties.isWhitespace
}

func isNewline(_ c: Unicode.Scalar) -> Bool { c == "\r" || c == "\n" }

/// `[^\s\p{L}\p{N}]`.
func isOther(_ c: Unicode.Scalar) -> Bool { !isWhitespace(c) && !isLetter(c) && !isNumber(c) }

/// GPT-2's map from bytes to printable characters: the bytes `!`–`~`, `¡`–`¬` and `®`–`ÿ` are themselves, the others
/// are shifted to U+0100 onwards in byte order.
enum ByteAlphabet {
    static let scalars: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            let printable = (33...126).contains(byte) || (161...172).contains(byte) || (174...255).contains(byte)
            table[byte] = Unicode.Scalar(printable ? UInt32(byte) : next)!
            if !printable { next += 1 }
        }
        return table
    }()
}
