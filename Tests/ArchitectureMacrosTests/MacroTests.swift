import Foundation
import SwiftSyntaxMacroExpansion
import SwiftSyntaxMacros
import SwiftSyntaxMacrosGenericTestSupport
import Testing

@testable import ArchitectureMacros

let macros: [String: MacroSpec] = [
    "HuggingFaceConfig": MacroSpec(type: HuggingFaceConfigMacro.self, conformances: ["Decodable"]),
    "ConfigKey": MacroSpec(type: ConfigKeyMacro.self),
    "architecture": MacroSpec(type: ArchitectureCheckMacro.self),
]

/// Asserts an expansion under Swift Testing.
func expectExpansion(
    _ source: String, _ expanded: String, diagnostics: [DiagnosticSpec] = [],
    sourceLocation: SourceLocation = #_sourceLocation
) {
    assertMacroExpansion(
        source, expandedSource: expanded, diagnostics: diagnostics, macroSpecs: macros,
        indentationWidth: .spaces(4)
    ) { failure in
        Issue.record(Comment(rawValue: failure.message), sourceLocation: sourceLocation)
    }
}

@Suite("@HuggingFaceConfig generates decoding from Hugging Face keys")
struct HuggingFaceConfigMacroTests {
    @Test("Snake-case keys, @ConfigKey aliases, defaults, optionals and required properties")
    func expansion() {
        expectExpansion(
            """
            @HuggingFaceConfig
            public struct Config {
                @ConfigKey("n_embd", "hidden_size") var width: Int = 768
                var layerNormEpsilon = 1e-5
                var nInner: Int?
                var vocabSize: Int
                static let name = "x"
                var computed: Int { 1 }
            }
            """,
            """
            public struct Config {
                var width: Int = 768
                var layerNormEpsilon = 1e-5
                var nInner: Int?
                var vocabSize: Int
                static let name = "x"
                var computed: Int { 1 }
            }

            extension Config: Decodable {
                /// The config keys `init(from:)` reads.
                public static let configKeys: [String] = ["n_embd", "hidden_size", "layer_norm_epsilon", "n_inner", "vocab_size"]
                public init(from decoder: any Decoder) throws {
                    let container = try decoder.container(keyedBy: HuggingFaceKey.self)
                    self.width = try container.huggingFaceValue(Int.self, keys: ["n_embd", "hidden_size"]) ?? 768
                    self.layerNormEpsilon = try container.huggingFaceValue(Double.self, keys: ["layer_norm_epsilon"]) ?? 1e-5
                    self.nInner = try container.huggingFaceValue(Int.self, keys: ["n_inner"])
                    self.vocabSize = try container.huggingFaceRequired(Int.self, keys: ["vocab_size"])
                }
            }
            """)
    }

    @Test("Applied to a class, it says it needs a struct")
    func notStruct() {
        expectExpansion(
            "@HuggingFaceConfig class Config {}", "class Config {}",
            diagnostics: [DiagnosticSpec(message: "@HuggingFaceConfig applies to a struct", line: 1, column: 1)])
    }

    @Test("A property whose type cannot be inferred asks for an annotation")
    func needsType() {
        expectExpansion(
            """
            @HuggingFaceConfig
            struct Config {
                var act = Activation.gelu
            }
            """,
            """
            struct Config {
                var act = Activation.gelu
            }

            extension Config: Decodable {
                /// The config keys `init(from:)` reads.
                static let configKeys: [String] = []
                init(from decoder: any Decoder) throws {
                    let container = try decoder.container(keyedBy: HuggingFaceKey.self)

                }
            }
            """,
            diagnostics: [
                DiagnosticSpec(
                    message: "give 'act' a type annotation so @HuggingFaceConfig can decode it",
                    line: 3, column: 9)
            ])
    }

    @Test("@ConfigKey without keys is diagnosed")
    func emptyConfigKey() {
        expectExpansion(
            "struct C {\n    @ConfigKey() var x: Int\n}", "struct C {\n    var x: Int\n}",
            diagnostics: [
                DiagnosticSpec(message: "@ConfigKey needs at least one string literal key", line: 2, column: 5)
            ])
    }
}

@Suite("#architecture checks literal declarations at compile time")
struct ArchitectureCheckMacroTests {
    /// A declaration with `body` lines, its expected expansion, and a diagnostic at `marker` on body line `line`.
    static func check(_ body: [String], trainedLength: String = "64", diagnostics: [(String, Int, String)] = []) {
        let lines = body.map { "    " + $0 }.joined(separator: "\n")
        let source = "#architecture(\"p\", trainedLength: \(trainedLength)) {\n\(lines)\n}"
        let expanded = "Architecture(\"p\", trainedLength: \(trainedLength)) {\n\(lines)\n}"
        let sourceLines = source.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let specs = diagnostics.map { message, line, marker in
            let text = sourceLines[line - 1]
            let column = text.range(of: marker).map { text.distance(from: text.startIndex, to: $0.lowerBound) + 1 } ?? 0
            return DiagnosticSpec(message: message, line: line, column: column)
        }
        expectExpansion(source, expanded, diagnostics: specs)
    }

    static let embedding = "TokenEmbedding(vocabulary: 256, width: 128)"

    @Test("A valid declaration expands to the initializer, unchanged")
    func validExpansion() {
        Self.check([
            Self.embedding, "Attention(heads: 8, kvHeads: 2, position: .rotary(dimensions: 16))",
            "Unembedding(tied: true)",
        ])
    }

    @Test("Heads that do not divide the width")
    func headsDivide() {
        Self.check(
            [Self.embedding, "Attention(heads: 7)"],
            diagnostics: [("width 128 is not divisible by 7 heads", 3, "7")])
    }

    @Test("kv heads that do not divide heads")
    func kvHeads() {
        Self.check(
            [Self.embedding, "Attention(heads: 8, kvHeads: 3)"],
            diagnostics: [("kvHeads 3 must divide heads 8", 3, "3")])
    }

    @Test("A norm whose width differs from the embedding")
    func normWidth() {
        Self.check(
            [Self.embedding, "LayerNorm(96)"],
            diagnostics: [("LayerNorm width 96 does not match the residual width 128", 3, "96")])
    }

    @Test("A Linear map changes the width the next norm is checked against")
    func linearWidth() {
        Self.check(
            [Self.embedding, "Linear(input: 128, output: 64, key: \"proj\")", "RMSNorm(128)"],
            diagnostics: [("RMSNorm width 128 does not match the residual width 64", 4, "128")])
    }

    @Test("An odd rotary width")
    func rotaryWidth() {
        Self.check(
            [Self.embedding, "Attention(heads: 8, position: .rotary(dimensions: 7))"],
            diagnostics: [("rotary dimensions must be even and at least 2, got 7", 3, "7")])
    }

    @Test("Zero repetitions and a zero trained length")
    func counts() {
        Self.check(
            [Self.embedding, "Repeat(0) {", "}"], trainedLength: "0",
            diagnostics: [
                ("trainedLength must be at least 1, got 0", 1, "0)"),
                ("Repeat count must be at least 1", 3, "0"),
            ])
    }

    @Test("Non-literal values are left alone, never crash the macro")
    func nonLiterals() {
        Self.check([
            "TokenEmbedding(vocabulary: v, width: w * 2)", "for h in [3, 5] {", "    Attention(heads: h)", "}",
            "Repeat(n) {", "    LayerNorm(width + 1)", "}",
        ])
    }
}
