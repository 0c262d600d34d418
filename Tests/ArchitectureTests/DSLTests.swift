import Foundation
import Testing
import TestSupport

@testable import Architecture

@Suite("The DSL builds plain, stable, validated values")
struct DSLTests {
    static func probe(layers: Int = 2, rotary: Bool = false, name: String = "probe") -> Architecture {
        Architecture(name, trainedLength: 128) {
            TokenEmbedding(vocabulary: 256, width: 64)
            for index in 0..<layers {
                Residual(key: "block\(index)") {
                    LayerNorm(64, key: "ln")
                    if rotary {
                        Attention(heads: 4, position: .rotary(fraction: 0.5))
                    } else {
                        Attention(heads: 4, position: .alibi())
                    }
                }
            }
            LayerNorm(64, key: "ln_f")
            Unembedding(tied: true)
        }
    }

    @Test("if, if/else and for build the expected layers")
    func controlFlow() {
        let architecture = Self.probe(layers: 3, rotary: true)
        #expect(architecture.layers.count == 6)
        guard case .residual(let block) = architecture.layers[2], case .attention(let attention) = block.body[1] else {
            Issue.record("layer 2 should be a residual around attention")
            return
        }
        #expect(attention.position.name == "rotary")
        #expect(architecture.manifest["block2.self_attn.q_proj.weight"]?.shape == [64, 64])
    }

    @Test("JSON round trip preserves the value, and the form is tagged by type and method")
    func jsonRoundTrip() throws {
        for architecture in Array(Architecture.presets.values) + [Self.probe()] {
            let decoded = try Architecture.decode(json: architecture.prettyJSON())
            #expect(decoded == architecture)
        }
        let text = String(decoding: try Self.probe().canonicalJSON(), as: UTF8.self)
        #expect(text.contains(#""type":"tokenEmbedding""#))
        #expect(text.contains(#""method":"alibi""#))
        #expect(text.hasPrefix(#"{"formatVersion":1,"layers":["#))
    }

    @Test("q/k norm survives the JSON round trip; the gains' names default to q_norm and k_norm")
    func queryKeyNormRoundTrip() throws {
        for family in ["qwen3", "olmo2"] {
            let architecture = try HuggingFace.architecture(
                configAt: Repository.models.appendingPathComponent(family).appendingPathComponent("config.json"))
            let decoded = try Architecture.decode(json: architecture.prettyJSON())
            #expect(decoded == architecture)
            #expect(String(decoding: try architecture.canonicalJSON(), as: UTF8.self).contains(#""queryKeyNorm""#))
        }
        let norm = try JSONDecoder().decode(QueryKeyNorm.self, from: Data(#"{"scope":"head","epsilon":1e-6}"#.utf8))
        #expect(norm == QueryKeyNorm(scope: .head, epsilon: 1e-6, queryKey: "q_norm", keyKey: "k_norm"))
        // Without q/k norm the form (and so every stored architecture hash) is what it was.
        #expect(!String(decoding: try Self.probe().canonicalJSON(), as: UTF8.self).contains("queryKeyNorm"))
    }

    @Test("The content hash ignores the name and changes with the content")
    func contentHash() {
        let a = Self.probe(name: "a"), b = Self.probe(name: "b")
        #expect(a.contentHash == b.contentHash)
        #expect(a.contentHash.count == 64)
        #expect(Self.probe(layers: 3).contentHash != a.contentHash)
        #expect(Self.probe(rotary: true).contentHash != a.contentHash)
    }

    @Test("Validation lists every problem at once")
    func validationListsAll() {
        let broken = Architecture("broken", trainedLength: 0) {
            TokenEmbedding(vocabulary: 256, width: 100)
            Repeat(2) {
                Residual {
                    LayerNorm(96)
                    Attention(heads: 7, kvHeads: 3, position: .rotary(dimensions: 7))
                }
                Residual(.post) { FeedForward(hidden: 0) }
            }
            Unembedding(tied: true)
        }
        let messages = broken.problems().map(\.description)
        let expected = [
            "trainedLength", "LayerNorm width 96 does not match the residual width 100",
            "not divisible by 7 heads", "kvHeads 3 must divide heads 7", "hidden width must be at least 1",
            "post-norm Residual must end", "rotary width 7 must be even",
        ]
        for fragment in expected {
            #expect(messages.contains { $0.contains(fragment) }, "missing '\(fragment)' in \(messages)")
        }
        #expect(throws: ArchitectureError.self) { try broken.validate() }
    }

    @Test("Structure errors: no embedding first, no unembedding last, learned table shorter than training")
    func structureErrors() {
        let architecture = Architecture("bad", trainedLength: 2048) {
            LayerNorm(64)
            TokenEmbedding(vocabulary: 10, width: 64)
            PositionEmbedding(.learned(rows: 1024))
        }
        let messages = architecture.problems().map(\.description).joined(separator: "\n")
        #expect(messages.contains("exactly one TokenEmbedding, first; found at layers[1]"))
        #expect(messages.contains("last layer must be an Unembedding"))
        #expect(messages.contains("before the TokenEmbedding"))
        #expect(messages.contains("cannot cover the trained length 2048"))
    }

    @Test("An embedding scale is optional in JSON, part of the hash, and must be positive")
    func embeddingScale() throws {
        func model(_ scale: Double?) -> Architecture {
            Architecture("scaled", trainedLength: 8) {
                TokenEmbedding(vocabulary: 16, width: 8, scale: scale)
                LayerNorm(8)
                Unembedding(tied: true)
            }
        }
        let plain = String(decoding: try model(nil).canonicalJSON(), as: UTF8.self)
        #expect(!plain.contains(#""scale":"#))
        #expect(try Architecture.decode(json: model(2).prettyJSON()) == model(2))
        #expect(model(2).contentHash != model(nil).contentHash)
        for bad in [0.0, -1, .nan, .infinity] {
            #expect(model(bad).problems().contains { $0.description.contains("scale must be a positive number") })
        }
    }

    @Test("Every preset is valid and uses its method")
    func presets() throws {
        for method in ProbeMethod.allCases {
            let probe = Architecture.probe(method)
            try probe.validate()
            #expect(
                probe.resolvedPositions(length: 64).first?.method == (method == .sinusoidal ? "nope" : method.rawValue))
        }
    }

    @Test("The printed tree shows scopes and widths")
    func printedTree() {
        let text = Architecture.probe(.alibi).description
        #expect(text.contains("probe-alibi — trained at 64 tokens"))
        #expect(text.contains("Attention 4 heads × 24, alibi  [attention]"))
        #expect(text.contains("Repeat × 3  [layers.N]"))
    }

    @Test("SHA-256 matches the FIPS 180-4 examples")
    func sha256() {
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let long = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(SHA256.hex(long) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }
}
