// Macro declarations. The macros only remove boilerplate and emit diagnostics; what they generate is
// plain Swift a reader could have written (expansion tests in Tests/ArchitectureMacrosTests pin it).

/// Generates `Decodable` conformance that reads a Hugging Face `config.json`: every stored `var` is read from
/// its snake_case key (or the keys given with `@ConfigKey`), falling back to its default value; optionals
/// without a default become `nil`; properties with neither are required.
///
/// ```swift
/// @HuggingFaceConfig
/// struct GPT2Config {
///     @ConfigKey("n_embd", "hidden_size") var width: Int = 768
///     var layerNormEpsilon: Double = 1e-5      // reads "layer_norm_epsilon"
///     var nInner: Int?                          // reads "n_inner", nil when absent
/// }
/// ```
@attached(extension, conformances: Decodable, names: named(init(from:)), named(configKeys))
public macro HuggingFaceConfig() = #externalMacro(module: "ArchitectureMacros", type: "HuggingFaceConfigMacro")

/// Names the config keys a property is read from, first present wins (aliases across versions).
@attached(peer)
public macro ConfigKey(_ keys: String...) = #externalMacro(module: "ArchitectureMacros", type: "ConfigKeyMacro")

/// Declares an architecture like `Architecture(_:trainedLength:layers:)` and checks its integer literals at
/// compile time: heads dividing the width, kv heads dividing heads, norm widths matching the embedding,
/// even rotary widths, positive counts. It expands to exactly that initializer call; validation at run
/// time (`validate()`) stays the authority for values that are not literals.
@freestanding(expression)
public macro architecture(
    _ name: String, trainedLength: Int, @ArchitectureBuilder layers: () -> [Layer]
) -> Architecture = #externalMacro(module: "ArchitectureMacros", type: "ArchitectureCheckMacro")

/// A string coding key for configs read by `@HuggingFaceConfig`.
public struct HuggingFaceKey: CodingKey, Sendable {
    public var stringValue: String
    public var intValue: Int? { nil }
    public init(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) { nil }
}

extension KeyedDecodingContainer where Key == HuggingFaceKey {
    /// The value of the first of `keys` that is present and not null, or `nil`.
    /// - Throws: `DecodingError.typeMismatch` when a present value has the wrong type.
    public func huggingFaceValue<T: Decodable>(_ type: T.Type, keys: [String]) throws -> T? {
        for name in keys {
            let key = HuggingFaceKey(stringValue: name)
            if contains(key), try !decodeNil(forKey: key) { return try decode(T.self, forKey: key) }
        }
        return nil
    }

    /// The value of the first of `keys` that is present and not null, or `nil`; when two of them are present (an old
    /// and a new name of one setting: `n_embed` and `hidden_size`, `rotary_pct` and `partial_rotary_factor`) they
    /// must agree.
    /// - Throws: `DecodingError.dataCorrupted` naming both keys and values when they disagree (which one a reader
    ///   takes differs between `transformers` versions: the config describes two models).
    public func huggingFaceValue<T: Decodable & Equatable>(_ type: T.Type, keys: [String]) throws -> T? {
        var found: (key: String, value: T)?
        for name in keys {
            let key = HuggingFaceKey(stringValue: name)
            guard contains(key), try !decodeNil(forKey: key) else { continue }
            let value = try decode(T.self, forKey: key)
            guard let first = found else {
                found = (name, value)
                continue
            }
            if first.value != value {
                throw DecodingError.dataCorrupted(
                    .init(
                        codingPath: codingPath + [key],
                        debugDescription:
                            "'\(first.key)' is \(first.value) but '\(name)' is \(value): two names of one setting that "
                            + "disagree, so the config describes two models; keep one of them"))
            }
        }
        return found?.value
    }

    /// The value of the first of `keys` that is present, agreeing with any other of them that is.
    /// - Throws: `DecodingError.keyNotFound` naming the first key when none is present.
    public func huggingFaceRequired<T: Decodable & Equatable>(_ type: T.Type, keys: [String]) throws -> T {
        if let value = try huggingFaceValue(T.self, keys: keys) { return value }
        let key = HuggingFaceKey(stringValue: keys.first ?? "")
        throw DecodingError.keyNotFound(
            key, .init(codingPath: codingPath, debugDescription: "required key '\(key.stringValue)' is missing"))
    }

    /// The value of the first of `keys` that is present.
    /// - Throws: `DecodingError.keyNotFound` naming the first key when none is present.
    public func huggingFaceRequired<T: Decodable>(_ type: T.Type, keys: [String]) throws -> T {
        if let value = try huggingFaceValue(T.self, keys: keys) { return value }
        let key = HuggingFaceKey(stringValue: keys.first ?? "")
        throw DecodingError.keyNotFound(
            key, .init(codingPath: codingPath, debugDescription: "required key '\(key.stringValue)' is missing"))
    }
}
