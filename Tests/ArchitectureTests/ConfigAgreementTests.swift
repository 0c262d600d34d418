import Foundation
import Testing
import TestSupport

@testable import Architecture

/// A config that says one thing under two names is read once; one that says two things is refused, naming both.
@Suite("Two names of one setting must agree")
struct ConfigAgreementTests {
    /// A fixture's config.json as a dictionary.
    static func config(_ model: String) throws -> [String: Any] {
        let url = Repository.fixtures.appendingPathComponent("models/\(model)/config.json")
        return try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    static func architecture(_ config: [String: Any]) throws -> Architecture {
        try HuggingFace.architecture(
            configJSON: try JSONSerialization.data(withJSONObject: config), path: "run/config.json")
    }

    /// Old and new names each importer reads for one setting (OPT reads none twice).
    static let aliases: [(model: String, keys: (String, String))] = [
        ("gpt2", ("n_embd", "hidden_size")), ("gpt2", ("n_positions", "max_position_embeddings")),
        ("bloom-8h", ("hidden_size", "n_embed")), ("bloom-8h", ("seq_length", "max_position_embeddings")),
        ("mpt", ("d_model", "hidden_size")), ("mpt", ("n_layers", "num_hidden_layers")),
        ("gpt_neox-partial", ("rotary_pct", "partial_rotary_factor")),
        ("gpt_neox-partial", ("rotary_emb_base", "rope_theta")),
    ]

    @Test(
        "Both names with one value import as either alone; with two values the config is refused, naming both",
        arguments: aliases.map { "\($0.model)|\($0.keys.0)|\($0.keys.1)" })
    func aliasPairs(_ entry: String) throws {
        let parts = entry.split(separator: "|").map(String.init)
        let (model, old, new) = (parts[0], parts[1], parts[2])
        var config = try Self.config(model)
        let reference = try Self.architecture(config)
        // The value the fixture gives (under either name, or in its rope dictionary for the rope keys).
        let rope = config["rope_parameters"] as? [String: Any]
        let value = try #require(
            (config[old] ?? config[new] ?? rope?[new] ?? rope?[old == "rotary_pct" ? "partial_rotary_factor" : old])
                as? NSNumber)
        config[old] = value
        config[new] = value
        #expect(try Self.architecture(config).contentHash == reference.contentHash, "\(entry) agreeing")
        config[new] = NSNumber(value: value.doubleValue * 2)
        #expect {
            try Self.architecture(config)
        } throws: { error in
            let text = "\(error)"
            return text.contains("'\(old)'") && text.contains("'\(new)'") && text.contains("disagree")
        }
    }

    @Test("rope_parameters and rope_scaling with different extensions are refused, saying how to evaluate one")
    func ropeDictionaries() throws {
        var config = try Self.config("llama-bytes")
        let reference = try Self.architecture(config)
        // transformers 5's export carries rope_parameters; the usual YaRN instructions add rope_scaling.
        config["rope_scaling"] = ["rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 64]
        #expect {
            try Self.architecture(config)
        } throws: { error in
            let text = "\(error)"
            return text.contains("rope_parameters says rope_type 'default'")
                && text.contains("rope_scaling says rope_type 'yarn', factor 2.0") && text.contains("--extensions")
        }
        // The same extension under both names (or the legacy name saying what the new one says) is one model.
        config["rope_scaling"] = config["rope_parameters"]
        #expect(try Self.architecture(config).contentHash == reference.contentHash)
        config["rope_scaling"] = ["type": "default"]
        #expect(try Self.architecture(config).contentHash == reference.contentHash)
        // A top-level rope_theta that differs from the dictionary's.
        config["rope_scaling"] = nil
        config["rope_theta"] = 500000.0
        #expect {
            try Self.architecture(config)
        } throws: { "\($0)".contains("rope_parameters.rope_theta") && "\($0)".contains("500000") }
        config["rope_theta"] = 10000.0
        #expect(try Self.architecture(config).contentHash == reference.contentHash)
    }

    @Test("GPT-NeoX's rotated fraction at the top level must match its rope dictionary's")
    func neoxFraction() throws {
        var config = try Self.config("gpt_neox-partial")
        config["rotary_pct"] = 0.5  // the dictionary says 0.25
        #expect {
            try Self.architecture(config)
        } throws: { "\($0)".contains("rope_parameters.partial_rotary_factor") && "\($0)".contains("0.5") }
    }
}
