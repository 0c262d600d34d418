import Foundation
import Testing
import TestSupport

@testable import Architecture

/// Every key of a config is read, ignored for a stated reason, or reported: listed when its effect is unknown,
/// refused when it is known to change the model.
@Suite("Configs are read completely")
struct ConfigKeyTests {
    static func json(_ object: [String: Any]) throws -> Data {
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    }

    static func fixture(_ relative: String) throws -> [String: Any] {
        let url = Repository.fixtures.appendingPathComponent(relative)
        return try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    /// Every config.json `transformers` 4 and 5 saved for the fixtures (Tests/Fixtures/make_configs.py), and the
    /// model fixtures' own (MosaicML's MPT among them).
    static let savedConfigs: [String] = {
        let manager = FileManager.default
        var found: [String] = []
        for folder in ["configs", "models"] {
            let base = Repository.fixtures.appendingPathComponent(folder)
            for name in (try? manager.contentsOfDirectory(atPath: base.path)) ?? [] {
                let file = base.appendingPathComponent("\(name)/config.json")
                guard manager.fileExists(atPath: file.path),
                    let data = try? Data(contentsOf: file),
                    let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                    object["model_type"] != nil
                else { continue }
                found.append("\(folder)/\(name)/config.json")
            }
        }
        return found.sorted()
    }()

    @Test("Every key transformers writes for each family is read or knowingly ignored", arguments: savedConfigs)
    func savedConfigsReadCompletely(_ relative: String) throws {
        let url = Repository.fixtures.appendingPathComponent(relative)
        let imported = try HuggingFace.imported(configAt: url)
        #expect(imported.audit.unread.isEmpty, "\(relative): not read: \(imported.audit.recorded)")
    }

    @Test("There are saved configs of every family to check against")
    func everyFamilyHasSavedConfigs() throws {
        var families = Set<String>()
        for relative in Self.savedConfigs {
            families.insert(try #require(try Self.fixture(relative)["model_type"] as? String))
        }
        #expect(families == Set(HuggingFace.supportedModelTypes))
        #expect(Set(HuggingFace.configKeys.keys) == Set(HuggingFace.supportedModelTypes))
    }

    @Test("A key nobody reads is listed with its value, and the config still imports as without it")
    func unknownKeyListed() throws {
        var config = try Self.fixture("models/llama-bytes/config.json")
        let reference = try HuggingFace.architecture(configJSON: try Self.json(config), path: "config.json")
        config["frobnication_depth"] = 3
        config["rope_parameters"] = (config["rope_parameters"] as? [String: Any] ?? [:]).merging(["warp": 2]) { a, _ in
            a
        }
        let imported = try HuggingFace.imported(configJSON: try Self.json(config), path: "config.json")
        #expect(imported.audit.recorded == ["frobnication_depth = 3", "rope_parameters.warp = 2"])
        #expect(imported.audit.modelChanging.isEmpty)
        #expect(imported.audit.warning == nil)
        #expect(imported.architecture.contentHash == reference.contentHash)
    }

    @Test("A real-world Llama export (SmolLM2's keys, nanotron's rope_interleaved false) has nothing unread")
    func smolLMKeys() throws {
        var config = try Self.fixture("models/llama-bytes/config.json")
        let extra: [String: Any] = [
            "architectures": ["LlamaForCausalLM"], "is_llama_config": true, "pretraining_tp": 1,
            "rope_interleaved": false, "torch_dtype": "bfloat16", "transformers_version": "4.40.1",
            "attention_dropout": 0.0, "initializer_range": 0.0417, "use_cache": true,
        ]
        config.merge(extra) { _, new in new }
        let imported = try HuggingFace.imported(configJSON: try Self.json(config), path: "config.json")
        #expect(imported.audit.unread.isEmpty, "\(imported.audit.recorded)")
    }

    /// Keys known to change a family's model that its importer does not read, with a value that does.
    static var changing: [(model: String, key: String, value: Any, neutral: Any)] {
        [
            ("llama-bytes", "attn_logit_softcapping", 50.0, NSNull()),
            ("llama-bytes", "sliding_window", 16, NSNull()),
            ("llama-bytes", "rope_interleaved", true, false),
            ("llama-bytes", "quantization_config", ["quant_method": "gptq"], NSNull()),
            ("gpt2", "attention_bias", true, false),
            ("gpt2", "rope_scaling", ["rope_type": "yarn", "factor": 2.0], NSNull()),
            ("opt", "final_logit_softcapping", 30.0, NSNull()),
            ("bloom-8h", "n_inner", 1024, NSNull()),
            ("mpt", "no_bias", false, true),
            ("mpt", "norm_type", "rmsnorm", "low_precision_layernorm"),
            ("gpt_neox-partial", "mlp_bias", true, false),
        ]
    }

    @Test(
        "A key known to change the model is refused, naming key, value and the way out; its neutral value is not",
        arguments: changing.indices)
    func modelChangingKeyRefused(_ index: Int) throws {
        let entry = Self.changing[index]
        var config = try Self.fixture("models/\(entry.model)/config.json")
        config[entry.key] = entry.value
        let data = try Self.json(config)
        #expect {
            try HuggingFace.architecture(configJSON: data, path: "run/config.json")
        } throws: { error in
            let text = "\(error)"
            return text.hasPrefix("run/config.json: '\(entry.key)' = ") && text.contains("changes the model")
                && text.contains("--allow-unknown-config-keys") && !text.contains("\n")
        }
        let allowed = try HuggingFace.imported(configJSON: data, path: "run/config.json", allowingUnknownKeys: true)
        #expect(allowed.audit.modelChanging.map(\.key) == [entry.key])
        #expect(allowed.audit.warning?.contains(entry.key) == true)
        config[entry.key] = entry.neutral
        let neutral = try HuggingFace.imported(configJSON: try Self.json(config), path: "run/config.json")
        #expect(neutral.audit.unread.isEmpty, "\(neutral.audit.recorded)")
    }

    @Test("Qwen-style sliding_window beside use_sliding_window false leaves the model as it is")
    func slidingWindowSwitchedOff() throws {
        var config = try Self.fixture("models/llama-bytes/config.json")
        config["sliding_window"] = 4096
        config["use_sliding_window"] = false
        let imported = try HuggingFace.imported(configJSON: try Self.json(config), path: "config.json")
        #expect(imported.audit.unread.isEmpty)
        config["use_sliding_window"] = true
        #expect(throws: ArchitectureError.self) {
            try HuggingFace.architecture(configJSON: try Self.json(config), path: "config.json")
        }
    }

    @Test("MPT's attn_config is read key by key: llm-foundry's rope is refused, an unknown key listed by its path")
    func mptNested() throws {
        var config = try Self.fixture("models/mpt/config.json")
        var attention = config["attn_config"] as? [String: Any] ?? [:]
        attention["rope"] = true
        config["attn_config"] = attention
        #expect {
            try HuggingFace.architecture(configJSON: try Self.json(config), path: "config.json")
        } throws: { "\($0)".contains("'attn_config.rope' = true") }
        attention["rope"] = false
        attention["kv_n_heads"] = 2
        config["attn_config"] = attention
        let imported = try HuggingFace.imported(configJSON: try Self.json(config), path: "config.json")
        #expect(imported.audit.recorded == ["attn_config.kv_n_heads = 2"])
    }

    @Test("Several model-changing keys are named together, in one line")
    func severalKeys() throws {
        var config = try Self.fixture("models/llama-bytes/config.json")
        config["attn_logit_softcapping"] = 50.0
        config["final_logit_softcapping"] = 30.0
        #expect {
            try HuggingFace.architecture(configJSON: try Self.json(config), path: "config.json")
        } throws: { error in
            let text = "\(error)"
            return text.contains("'attn_logit_softcapping' = 50") && text.contains("'final_logit_softcapping' = 30")
                && text.contains("change the model") && !text.contains("\n")
        }
    }

    @Test("Docs/config-keys.md states each family's inventory as the code has it")
    func documentedInventory() throws {
        let url = Repository.root.appendingPathComponent("Docs/config-keys.md")
        let expected = HuggingFace.configKeysMarkdown()
        if ProcessInfo.processInfo.environment["EXTRAPOLATE_WRITE_DOCS"] == "1" {
            try Data(expected.utf8).write(to: url)
        }
        let written = try String(contentsOf: url, encoding: .utf8)
        #expect(
            written == expected,
            "Docs/config-keys.md is out of date: EXTRAPOLATE_WRITE_DOCS=1 swift test --filter documentedInventory")
    }
}
