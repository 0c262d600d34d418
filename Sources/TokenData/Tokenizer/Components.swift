import Foundation

/// A normalizer of `tokenizer.json`.
indirect enum Normalizer: Sendable {
    case nfc, nfd, nfkc, nfkd, lowercase
    case prepend(String)
    case replace(pattern: String, content: String)
    case strip(left: Bool, right: Bool)
    case sequence([Normalizer])

    func apply(_ text: String) -> String {
        switch self {
        case .nfc: text.precomposedStringWithCanonicalMapping
        case .nfd: text.decomposedStringWithCanonicalMapping
        case .nfkc: text.precomposedStringWithCompatibilityMapping
        case .nfkd: text.decomposedStringWithCompatibilityMapping
        case .lowercase: text.lowercased()
        case .prepend(let prefix): text.isEmpty ? text : prefix + text
        case .replace(let pattern, let content): replacingScalars(text, pattern, content)
        case .strip(let left, let right):
            {
                var scalars = Substring(text).unicodeScalars[...]
                while left, let first = scalars.first, isWhitespace(first) { scalars.removeFirst() }
                while right, let last = scalars.last, isWhitespace(last) { scalars.removeLast() }
                return String(String.UnicodeScalarView(scalars))
            }()
        case .sequence(let steps): steps.reduce(text) { $1.apply($0) }
        }
    }

    /// The most the normalizer can multiply a text's length in UTF-8 bytes by: a Replace by its content's bytes over
    /// its pattern's, a Prepend by one plus its prefix (for a one-byte text), compatibility decomposition by 18 (U+FDFA
    /// becomes 18 letters), canonical forms by 4, lowercasing by 3, a sequence by the product of its steps.
    var growth: Double {
        switch self {
        case .nfc, .nfd: 4
        case .nfkc, .nfkd: 18
        case .lowercase: 3
        case .prepend(let prefix): Double(1 + prefix.utf8.count)
        case .replace(let pattern, let content):
            pattern.isEmpty ? 1 : max(1, (Double(content.utf8.count) / Double(pattern.utf8.count)).rounded(.up))
        case .strip: 1
        case .sequence(let steps): steps.reduce(1) { $0 * $1.growth }
        }
    }
}

/// `text` with every occurrence of `pattern` replaced, compared scalar by scalar (Swift's `String` comparison would
/// treat canonically equivalent text as equal; `tokenizers` compares bytes).
func replacingScalars(_ text: String, _ pattern: String, _ content: String) -> String {
    let source = Array(text.unicodeScalars)
    let target = Array(pattern.unicodeScalars)
    guard !target.isEmpty else { return text }
    var out = String.UnicodeScalarView()
    var i = 0
    while i < source.count {
        if i + target.count <= source.count, Array(source[i..<(i + target.count)]) == target {
            out.append(contentsOf: content.unicodeScalars)
            i += target.count
        } else {
            out.append(source[i])
            i += 1
        }
    }
    return String(out)
}

/// How `Split` treats what its pattern matches.
enum SplitBehavior: String, Sendable {
    case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"
}

/// A pre-tokenizer of `tokenizer.json`.
indirect enum PreTokenizer: Sendable {
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case split(pattern: SplitMatcher, behavior: SplitBehavior, invert: Bool)
    case metaspace(replacement: String, prepend: String, split: Bool)
    case digits(individually: Bool)
    case sequence([PreTokenizer])

    func apply(_ pieces: [Piece]) -> [Piece] {
        switch self {
        case .sequence(let steps): return steps.reduce(pieces) { $1.apply($0) }
        case .byteLevel(let addPrefixSpace, let useRegex):
            return pieces.flatMap { piece -> [Piece] in
                var text = piece.text
                if addPrefixSpace && !text.hasPrefix(" ") { text = " " + text }
                let parts =
                    useRegex
                    ? split(Piece(text: text, atStart: piece.atStart), .pattern(.gpt2), .isolated)
                    : [
                        Piece(text: text, atStart: piece.atStart)
                    ]
                return parts.map { part in
                    var mapped = String.UnicodeScalarView()
                    for byte in part.text.utf8 { mapped.append(ByteAlphabet.scalars[Int(byte)]) }
                    return Piece(text: String(mapped), atStart: part.atStart)
                }
            }
        case .split(let pattern, let behavior, let invert):
            return pieces.flatMap { split($0, pattern, behavior, invert: invert) }
        case .metaspace(let replacement, let prepend, let splitting):
            return pieces.flatMap { piece -> [Piece] in
                var text = replacingScalars(piece.text, " ", replacement)
                let first = prepend == "first" && piece.atStart
                if (prepend == "always" || first) && !text.hasPrefix(replacement) { text = replacement + text }
                let whole = Piece(text: text, atStart: piece.atStart)
                return splitting ? split(whole, .literal(replacement), .mergedWithNext) : [whole]
            }
        case .digits(let individually):
            return pieces.flatMap { split($0, .digits(individually: individually), .isolated) }
        }
    }

    /// Splits a piece around the matches of `matcher`, as `tokenizers`' `split` with a delimiter behavior does.
    private func split(_ piece: Piece, _ matcher: SplitMatcher, _ behavior: SplitBehavior, invert: Bool = false)
        -> [Piece]
    {
        let scalars = Array(piece.text.unicodeScalars)
        var parts: [(range: Range<Int>, isMatch: Bool)] = []
        var position = 0
        for match in matcher.matches(scalars) {
            if match.lowerBound > position { parts.append((position..<match.lowerBound, invert)) }
            parts.append((match, !invert))
            position = match.upperBound
        }
        if position < scalars.count { parts.append((position..<scalars.count, invert)) }
        var ranges: [Range<Int>] = []
        switch behavior {
        case .isolated: ranges = parts.map(\.range)
        case .removed: ranges = parts.filter { !$0.isMatch }.map(\.range)
        case .mergedWithPrevious:
            for part in parts {
                if part.isMatch, let last = ranges.last, last.upperBound == part.range.lowerBound {
                    ranges[ranges.count - 1] = last.lowerBound..<part.range.upperBound
                } else {
                    ranges.append(part.range)
                }
            }
        case .mergedWithNext:
            var pending: Range<Int>?
            for part in parts {
                if part.isMatch {
                    if let open = pending { ranges.append(open) }
                    pending = part.range
                } else if let open = pending {
                    ranges.append(open.lowerBound..<part.range.upperBound)
                    pending = nil
                } else {
                    ranges.append(part.range)
                }
            }
            if let open = pending { ranges.append(open) }
        case .contiguous:
            var previousWasMatch = false
            for part in parts {
                if part.isMatch, previousWasMatch, let last = ranges.last {
                    ranges[ranges.count - 1] = last.lowerBound..<part.range.upperBound
                } else {
                    ranges.append(part.range)
                }
                previousWasMatch = part.isMatch
            }
        }
        return ranges.filter { !$0.isEmpty }.map { range in
            Piece(
                text: String(String.UnicodeScalarView(scalars[range])), atStart: piece.atStart && range.lowerBound == 0)
        }
    }
}

/// What a `Split` or `Digits` pre-tokenizer looks for.
enum SplitMatcher: Sendable {
    case pattern(SplitPattern)
    case literal(String)
    case digits(individually: Bool)

    func matches(_ scalars: [Unicode.Scalar]) -> [Range<Int>] {
        switch self {
        case .pattern(let pattern): return pattern.matches(scalars)
        case .literal(let text):
            let target = Array(text.unicodeScalars)
            guard !target.isEmpty else { return [] }
            var found: [Range<Int>] = []
            var i = 0
            while i + target.count <= scalars.count {
                if Array(scalars[i..<(i + target.count)]) == target {
                    found.append(i..<(i + target.count))
                    i += target.count
                } else {
                    i += 1
                }
            }
            return found
        case .digits(let individually):
            var found: [Range<Int>] = []
            var i = 0
            while i < scalars.count {
                guard isNumber(scalars[i]) else {
                    i += 1
                    continue
                }
                var end = i + 1
                while !individually, end < scalars.count, isNumber(scalars[end]) { end += 1 }
                found.append(i..<end)
                i = end
            }
            return found
        }
    }
}

/// A post-processor of `tokenizer.json` (for a single sequence).
indirect enum PostProcessor: Sendable {
    /// The `single` template: special tokens' ids around the sequence.
    case template(before: [Int32], after: [Int32])
    case sequence([PostProcessor])
    case none

    func apply(_ ids: [Int32]) -> [Int32] {
        switch self {
        case .template(let before, let after): before + ids + after
        case .sequence(let steps): steps.reduce(ids) { $1.apply($0) }
        case .none: ids
        }
    }
}

/// The added tokens, split out of the text before anything else (`tokenizers`' `AddedVocabulary`).
struct AddedTokens: Sendable {
    struct Token: Sendable {
        var id: Int32
        var content: String
        var scalars: [Unicode.Scalar]
        var special: Bool
        var normalized: Bool
        var singleWord: Bool
        var leftStrip: Bool
        var rightStrip: Bool
    }

    enum Segment {
        case token(Int32)
        /// Text, and whether it begins where the input begins.
        case text(String, atStart: Bool)
    }

    var tokens: [Token]

    /// `text` cut around the added tokens whose `normalized` flag is `normalized`: the leftmost match first, the
    /// longest among those starting there; `lstrip`/`rstrip` take the whitespace beside a match with it,
    /// `single_word` matches only between non-word characters.
    func split(_ text: String, normalized: Bool) -> [Segment] {
        let candidates = tokens.filter { $0.normalized == normalized && !$0.scalars.isEmpty }
        guard !candidates.isEmpty else { return [.text(text, atStart: true)] }
        let scalars = Array(text.unicodeScalars)
        var segments: [Segment] = []
        var textStart = 0
        var i = 0
        func word(_ k: Int) -> Bool {
            k >= 0 && k < scalars.count && (isLetter(scalars[k]) || isNumber(scalars[k]) || scalars[k] == "_")
        }
        while i < scalars.count {
            var best: Token?
            for token in candidates where token.scalars.count > (best?.scalars.count ?? 0) {
                guard i + token.scalars.count <= scalars.count,
                    scalars[i..<(i + token.scalars.count)].elementsEqual(token.scalars)
                else { continue }
                if token.singleWord && (word(i - 1) || word(i + token.scalars.count)) { continue }
                best = token
            }
            guard let token = best else {
                i += 1
                continue
            }
            var start = i
            var end = i + token.scalars.count
            if token.leftStrip { while start > textStart, isWhitespace(scalars[start - 1]) { start -= 1 } }
            if token.rightStrip { while end < scalars.count, isWhitespace(scalars[end]) { end += 1 } }
            if start > textStart {
                segments.append(
                    .text(String(String.UnicodeScalarView(scalars[textStart..<start])), atStart: textStart == 0))
            }
            segments.append(.token(token.id))
            textStart = end
            i = end
        }
        if textStart < scalars.count {
            segments.append(.text(String(String.UnicodeScalarView(scalars[textStart...])), atStart: textStart == 0))
        }
        return segments
    }
}

/// Reads the components of a `tokenizer.json`, each error naming its key.
struct Components {
    var path: String

    func unsupported(_ what: String) -> TokenizerError { .unsupported(path: path, component: what) }
    func malformed(_ key: String, _ reason: String) -> TokenizerError {
        .malformed(path: path, key: key, reason: reason)
    }

    /// The boolean at `key` of `object` (in `context`), `fallback` when absent or null: the `tokenizers` library's
    /// defaults. Any other value is refused, as `tokenizers` refuses it, rather than read as the default.
    func flag(_ object: [String: Any], _ key: String, in context: String, default fallback: Bool) throws(TokenizerError)
        -> Bool
    {
        switch object[key] {
        case nil, is NSNull: return fallback
        case let flag as Bool: return flag
        case let value: throw malformed("\(context).\(key)", "expected true or false, found \(Self.describe(value))")
        }
    }

    /// The string at `key` of `object` (in `context`), `fallback` when absent or null; any other value is refused.
    func text(_ object: [String: Any], _ key: String, in context: String, default fallback: String)
        throws(TokenizerError) -> String
    {
        switch object[key] {
        case nil, is NSNull: return fallback
        case let text as String: return text
        case let value: throw malformed("\(context).\(key)", "expected a string, found \(Self.describe(value))")
        }
    }

    static func describe(_ value: Any?) -> String {
        switch value {
        case let text as String: "the string \"\(text.prefix(40))\""
        case is NSNumber: "the number \(value!)"
        case is [Any]: "a list"
        case is [String: Any]: "an object"
        default: "\(value.map { "\($0)" } ?? "nothing")"
        }
    }

    func model(_ value: Any?) throws(TokenizerError) -> BPEModel {
        guard let object = value as? [String: Any] else { throw malformed("model", "missing") }
        let type = try text(object, "type", in: "model", default: "BPE")
        guard type == "BPE" else { throw unsupported("the \(type) model") }
        if let dropout = object["dropout"] as? Double, dropout > 0 { throw unsupported("BPE dropout") }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let affix = object[key] as? String, !affix.isEmpty { throw unsupported("BPE \(key)") }
        }
        guard let entries = object["vocab"] as? [String: Any] else { throw malformed("model.vocab", "missing") }
        var vocabulary: [String: Int32] = [:]
        vocabulary.reserveCapacity(entries.count)
        for (token, id) in entries {
            guard let number = (id as? NSNumber)?.int32Value else {
                throw malformed("model.vocab.\(token)", "not an id")
            }
            vocabulary[token] = number
        }
        guard let list = object["merges"] as? [Any] else { throw malformed("model.merges", "missing") }
        var merges: [UInt64: (rank: Int32, id: Int32)] = [:]
        merges.reserveCapacity(list.count)
        for (rank, entry) in list.enumerated() {
            let pair: [String]
            if let text = entry as? String {
                // The older form: "a b" (a and b never contain a space in these vocabularies).
                pair = text.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            } else if let array = entry as? [String] {
                pair = array
            } else {
                throw malformed("model.merges[\(rank)]", "neither \"a b\" nor [a, b]")
            }
            guard pair.count == 2, let a = vocabulary[pair[0]], let b = vocabulary[pair[1]],
                let merged = vocabulary[pair[0] + pair[1]]
            else { throw malformed("model.merges[\(rank)]", "\(pair) names a token not in the vocabulary") }
            let key = BPEModel.key(a, b)
            if merges[key] == nil { merges[key] = (Int32(rank), merged) }
        }
        let unknown = try (object["unk_token"] as? String).map { (token: String) throws(TokenizerError) -> Int32 in
            guard let id = vocabulary[token] else {
                throw malformed("model.unk_token", "'\(token)' is not in the vocabulary")
            }
            return id
        }
        let byteFallback = try flag(object, "byte_fallback", in: "model", default: false)
        var characters: [UInt32: Int32] = [:]
        for (token, id) in vocabulary {
            var scalars = token.unicodeScalars.makeIterator()
            if let first = scalars.next(), scalars.next() == nil { characters[first.value] = id }
        }
        var model = BPEModel(
            vocabulary: vocabulary, merges: merges, unknown: unknown,
            fuseUnknown: try flag(object, "fuse_unk", in: "model", default: false),
            byteFallback: byteFallback, ignoreMerges: try flag(object, "ignore_merges", in: "model", default: false),
            byteTokens: (0..<256).map { vocabulary[String(format: "<0x%02X>", $0)] })
        model.characters = characters
        return model
    }

    func normalizer(_ value: Any?) throws(TokenizerError) -> Normalizer? {
        guard let object = value as? [String: Any] else { return nil }
        let type = try text(object, "type", in: "normalizer", default: "")
        switch type {
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "Prepend":
            guard let prefix = object["prepend"] as? String else { throw malformed("normalizer.prepend", "missing") }
            return .prepend(prefix)
        case "Replace":
            guard let content = object["content"] as? String else { throw malformed("normalizer.content", "missing") }
            guard let pattern = (object["pattern"] as? [String: Any])?["String"] as? String else {
                throw unsupported("the Replace normalizer with a regex pattern")
            }
            return .replace(pattern: pattern, content: content)
        case "Strip":
            return .strip(
                left: try flag(object, "strip_left", in: "normalizer", default: true),
                right: try flag(object, "strip_right", in: "normalizer", default: true))
        case "Sequence":
            guard let steps = object["normalizers"] as? [Any] else {
                throw malformed("normalizer.normalizers", "missing")
            }
            var list: [Normalizer] = []
            for step in steps { if let normalizer = try normalizer(step) { list.append(normalizer) } }
            return .sequence(list)
        default:
            throw unsupported("the \(type.isEmpty ? "untyped" : type) normalizer")
        }
    }

    func preTokenizer(_ value: Any?) throws(TokenizerError) -> PreTokenizer? {
        guard let object = value as? [String: Any] else { return nil }
        let type = try text(object, "type", in: "pre_tokenizer", default: "")
        switch type {
        case "ByteLevel":
            return .byteLevel(
                addPrefixSpace: try flag(object, "add_prefix_space", in: "pre_tokenizer", default: true),
                useRegex: try flag(object, "use_regex", in: "pre_tokenizer", default: true))
        case "Split":
            let pattern = object["pattern"] as? [String: Any]
            let matcher: SplitMatcher
            if let literal = pattern?["String"] as? String {
                matcher = .literal(literal)
            } else if let source = pattern?["Regex"] as? String {
                guard let known = SplitPattern(source: source) else {
                    throw unsupported("the Split pre-tokenizer's regex \(source)")
                }
                matcher = .pattern(known)
            } else {
                throw malformed("pre_tokenizer.pattern", "neither String nor Regex")
            }
            let name = try text(object, "behavior", in: "pre_tokenizer", default: "Isolated")
            guard let behavior = SplitBehavior(rawValue: name) else { throw unsupported("the Split behavior \(name)") }
            return .split(
                pattern: matcher, behavior: behavior,
                invert: try flag(object, "invert", in: "pre_tokenizer", default: false))
        case "Metaspace":
            let replacement = try text(object, "replacement", in: "pre_tokenizer", default: "▁")
            var scheme = object["prepend_scheme"] as? String
            if scheme == nil {
                scheme = (try flag(object, "add_prefix_space", in: "pre_tokenizer", default: true)) ? "always" : "never"
            }
            guard let scheme, ["always", "first", "never"].contains(scheme) else {
                throw malformed("pre_tokenizer.prepend_scheme", "expected always, first or never")
            }
            return .metaspace(
                replacement: replacement, prepend: scheme,
                split: try flag(object, "split", in: "pre_tokenizer", default: true))
        case "Digits":
            return .digits(individually: try flag(object, "individual_digits", in: "pre_tokenizer", default: false))
        case "Sequence":
            guard let steps = object["pretokenizers"] as? [Any] else {
                throw malformed("pre_tokenizer.pretokenizers", "missing")
            }
            var list: [PreTokenizer] = []
            for step in steps { if let pre = try preTokenizer(step) { list.append(pre) } }
            return .sequence(list)
        default:
            throw unsupported("the \(type.isEmpty ? "untyped" : type) pre-tokenizer")
        }
    }

    func addedTokens(_ value: Any?) throws(TokenizerError) -> AddedTokens {
        var tokens: [AddedTokens.Token] = []
        for (index, entry) in ((value as? [Any]) ?? []).enumerated() {
            guard let object = entry as? [String: Any], let content = object["content"] as? String,
                let id = (object["id"] as? NSNumber)?.int32Value
            else { throw malformed("added_tokens[\(index)]", "needs content and id") }
            let special = try flag(object, "special", in: "added_tokens", default: false)
            tokens.append(
                AddedTokens.Token(
                    id: id, content: content, scalars: Array(content.unicodeScalars), special: special,
                    normalized: try flag(object, "normalized", in: "added_tokens", default: !special),
                    singleWord: try flag(object, "single_word", in: "added_tokens", default: false),
                    leftStrip: try flag(object, "lstrip", in: "added_tokens", default: false),
                    rightStrip: try flag(object, "rstrip", in: "added_tokens", default: false)))
        }
        return AddedTokens(tokens: tokens)
    }

    func postProcessor(_ value: Any?, vocabulary: [String: Int32], added: AddedTokens) throws(TokenizerError)
        -> PostProcessor?
    {
        guard let object = value as? [String: Any] else { return nil }
        let type = try text(object, "type", in: "post_processor", default: "")
        func id(_ token: String, _ key: String) throws(TokenizerError) -> Int32 {
            guard let id = added.tokens.first(where: { $0.content == token })?.id ?? vocabulary[token] else {
                throw malformed(key, "'\(token)' is not a token")
            }
            return id
        }
        switch type {
        case "ByteLevel": return PostProcessor.none
        case "TemplateProcessing":
            guard let single = object["single"] as? [[String: Any]] else {
                throw malformed("post_processor.single", "missing")
            }
            let specials = object["special_tokens"] as? [String: Any] ?? [:]
            var before: [Int32] = []
            var after: [Int32] = []
            var seenSequence = false
            for item in single {
                if item["Sequence"] != nil {
                    seenSequence = true
                    continue
                }
                guard let special = item["SpecialToken"] as? [String: Any], let name = special["id"] as? String else {
                    throw malformed("post_processor.single", "an item is neither Sequence nor SpecialToken")
                }
                var ids: [Int32] = []
                if let declared = (specials[name] as? [String: Any])?["ids"] as? [NSNumber] {
                    ids = declared.map(\.int32Value)
                } else {
                    ids = [try id(name, "post_processor.special_tokens")]
                }
                if seenSequence { after += ids } else { before += ids }
            }
            return .template(before: before, after: after)
        case "RobertaProcessing", "BertProcessing":
            guard let cls = object["cls"] as? [Any], let sep = object["sep"] as? [Any],
                let clsID = (cls.last as? NSNumber)?.int32Value, let sepID = (sep.last as? NSNumber)?.int32Value
            else { throw malformed("post_processor", "cls and sep must be [token, id]") }
            return .template(before: [clsID], after: [sepID])
        case "Sequence":
            guard let steps = object["processors"] as? [Any] else {
                throw malformed("post_processor.processors", "missing")
            }
            var list: [PostProcessor] = []
            for step in steps {
                if let processor = try postProcessor(step, vocabulary: vocabulary, added: added) {
                    list.append(processor)
                }
            }
            return .sequence(list)
        default:
            throw unsupported("the \(type.isEmpty ? "untyped" : type) post-processor")
        }
    }
}
