import Foundation
import Testing
import TestSupport

@testable import Architecture

/// What transformers made of each fixture config (`Tests/Fixtures/make_configs.py`).
struct ExpectedImport: Decodable {
    struct Rope: Decodable {
        var length: Int
        var inverse_frequencies: [Double]
        var attention_factor: Double
    }

    var model_type: String
    var parameter_count: Int
    var tensors: [String: [Int]]?
    var rope: [Rope]?
}

let fixtureConfigs: [String] = {
    let folder = Repository.fixtures.appendingPathComponent("configs")
    let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
    return names.sorted()
}()

@Suite("Hugging Face configs import with the tensors transformers saves")
struct HuggingFaceImportTests {
    static func load(_ name: String) throws -> (Architecture, ExpectedImport) {
        let folder = Repository.fixtures.appendingPathComponent("configs/\(name)")
        let architecture = try HuggingFace.architecture(configAt: folder)
        return (architecture, try loadJSON(ExpectedImport.self, "configs/\(name)/expected.json"))
    }

    @Test("The fixture set covers every supported family in both config forms")
    func coverage() {
        #expect(fixtureConfigs.count >= 40)
        for family in HuggingFace.supportedModelTypes {
            #expect(fixtureConfigs.contains { $0.hasPrefix(family) }, "\(family)")
        }
        #expect(fixtureConfigs.filter { $0.hasSuffix("-v4") }.count >= 20)
    }

    @Test("Parameter count equals transformers' count", arguments: fixtureConfigs)
    func parameterCount(name: String) throws {
        let (architecture, expected) = try Self.load(name)
        #expect(architecture.manifest.parameterCount == expected.parameter_count)
    }

    @Test(
        "Manifest names and shapes equal the safetensors header save_pretrained writes",
        arguments: fixtureConfigs.filter { !$0.contains("like") && !$0.contains("small") })
    func manifestMatchesCheckpoint(name: String) throws {
        let (architecture, expected) = try Self.load(name)
        let tensors = try #require(expected.tensors)
        let manifest = Dictionary(uniqueKeysWithValues: architecture.manifest.tensors.map { ($0.name, $0.shape) })
        let missing = Set(tensors.keys).subtracting(manifest.keys).sorted()
        let extra = Set(manifest.keys).subtracting(tensors.keys).sorted()
        #expect(missing.isEmpty, "in the checkpoint but not the manifest: \(missing)")
        #expect(extra.isEmpty, "in the manifest but not the checkpoint: \(extra)")
        for (tensor, shape) in tensors where manifest[tensor] != nil {
            #expect(manifest[tensor] == shape, "\(tensor): manifest \(manifest[tensor] ?? []) vs checkpoint \(shape)")
        }
    }

    @Test(
        "Rotary frequencies and attention factor equal transformers' at 1× and 4× the trained length",
        arguments: fixtureConfigs.filter { $0 != "llama-longrope-v4" })
    func rotaryFrequencies(name: String) throws {
        let (architecture, expected) = try Self.load(name)
        guard let references = expected.rope else { return }
        for reference in references {
            let resolved = try #require(architecture.resolvedPositions(length: reference.length).first)
            expectClose(
                resolved.inverseFrequencies ?? [], reference.inverse_frequencies, tolerance: 2e-6,
                relative: true, "\(name) at \(reference.length)")
            #expect(abs((resolved.attentionFactor ?? 0) - reference.attention_factor) < 1e-6)
        }
    }

    @Test(
        "LongRoPE picks its list by the current length as transformers 5 does; transformers 4.46 picked by the configured maximum"
    )
    func longRoPEListChoice() throws {
        let (architecture, v4) = try Self.load("llama-longrope-v4")
        let (_, v5) = try Self.load("llama-longrope")
        let ours = try #require(architecture.resolvedPositions(length: 64).first?.inverseFrequencies)
        let current = try #require(v5.rope?.first?.inverse_frequencies)
        let older = try #require(v4.rope?.first?.inverse_frequencies)
        expectClose(ours, current, tolerance: 2e-6, relative: true, "transformers 5 at the original length: short list")
        #expect(zip(ours, older).contains { abs($0 - $1) > 1e-3 * abs($1) }, "4.46 used the long list at 1x")
    }

    @Test(
        "The older config form (transformers 4.x) imports to the same architecture as the newer one",
        arguments: fixtureConfigs.filter { $0.hasSuffix("-v4") })
    func legacyFormAgrees(name: String) throws {
        let (legacy, _) = try Self.load(name)
        let (current, _) = try Self.load(String(name.dropLast(3)))
        #expect(legacy.contentHash == current.contentHash, "\(legacy.description)\n---\n\(current.description)")
    }

    @Test("Family structure: GPT-NeoX is parallel and partial-rotary, OPT-350m is post-norm with projections")
    func familyStructure() throws {
        let (neox, _) = try Self.load("gpt_neox-partial")
        let position = try #require(neox.resolvedPositions(length: 64).first)
        #expect(position.rotaryWidth == 4, "16-wide heads × 0.25")
        #expect(neox.description.contains("ParallelResidual (2 branches)"))
        let (opt, _) = try Self.load("opt-350m-like")
        #expect(opt.description.contains("Residual (post-norm)"))
        #expect(opt.manifest["model.decoder.project_in.weight"]?.shape == [1024, 512])
        #expect(opt.support(at: 2048).isSupported && !opt.support(at: 4096).isSupported)
    }

    @Test(
        "Mistral's window: as given, transformers' 4096 when absent, none when null; Qwen2's only when every layer slides"
    )
    func slidingWindows() throws {
        func imported(_ json: String) throws -> Architecture {
            try HuggingFace.architecture(configJSON: Data(json.utf8), path: "x/config.json")
        }
        let tiny =
            #""vocab_size": 96, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64"#
        #expect(
            try imported(#"{"model_type": "mistral", \#(tiny), "sliding_window": 16}"#).description.contains(
                "window 16"))
        #expect(try imported(#"{"model_type": "mistral", \#(tiny)}"#).description.contains("window 4096"))
        #expect(
            !(try imported(#"{"model_type": "mistral", \#(tiny), "sliding_window": null}"#).description.contains(
                "window")))
        let qwen = try imported(#"{"model_type": "qwen2", \#(tiny), "use_sliding_window": false, "sliding_window": 8}"#)
        #expect(!qwen.description.contains("window"))
        let sliding =
            #"{"model_type": "qwen2", \#(tiny), "use_sliding_window": true, "sliding_window": 8, "max_window_layers": 0}"#
        #expect(try imported(sliding).description.contains("window 8"))
        let mixed =
            #"{"model_type": "qwen2", \#(tiny), "use_sliding_window": true, "sliding_window": 8, "max_window_layers": 1}"#
        #expect {
            try imported(mixed)
        } throws: { "\($0)".contains("max_window_layers") && "\($0)".contains("some layers use a sliding window") }
    }

    @Test(
        "Phi-3's older names for LongRoPE ('su', 'yarn' in rope_scaling) import as LongRoPE, as transformers reads them"
    )
    func phi3LegacyLongRoPE() throws {
        let folder = Repository.fixtures.appendingPathComponent("configs/phi3-mini-128k-like")
        let config = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("config.json")))
                as? [String: Any])
        let current = try HuggingFace.architecture(configAt: folder)
        #expect(current.description.contains("rotary"))
        for name in ["su", "yarn", "longrope"] {
            var legacy = config
            var scaling = try #require(legacy.removeValue(forKey: "rope_parameters") as? [String: Any])
            legacy["rope_theta"] = scaling.removeValue(forKey: "rope_theta")
            scaling.removeValue(forKey: "rope_type")
            scaling["type"] = name
            legacy["rope_scaling"] = scaling
            let imported = try HuggingFace.architecture(
                configJSON: try JSONSerialization.data(withJSONObject: legacy), path: "x/config.json")
            #expect(imported.contentHash == current.contentHash, "rope_scaling type '\(name)'")
        }
    }

    @Test(
        "Gemma 2's layers follow layer_types (default: even layers slide); what the engine cannot run is refused by key"
    )
    func gemma2Layers() throws {
        func imported(_ extra: String) throws -> Architecture {
            let json =
                #"{"model_type": "gemma2", "vocab_size": 96, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 64, "sliding_window": 8"#
                + extra + "}"
            return try HuggingFace.architecture(configJSON: Data(json.utf8), path: "x/config.json")
        }
        let windows = { (architecture: Architecture) -> [Int?] in
            architecture.resolvedLayers.flatMap { layer -> [Int?] in
                guard case .residual(_, let body) = layer else { return [] }
                return body.compactMap { inner in
                    if case .leaf(let leaf) = inner, case .attention(let node) = leaf.layer { return node.window }
                    return nil
                }
            }
        }
        #expect(windows(try imported("")) == [8, nil, 8])
        let types = #", "layer_types": ["full_attention", "sliding_attention", "full_attention"]"#
        #expect(windows(try imported(types)) == [nil, 8, nil])
        let all = #", "layer_types": ["sliding_attention", "sliding_attention", "sliding_attention"]"#
        #expect(try imported(all).description.contains("Repeat × 3"))
        #expect(try imported("").description.contains("scores capped at 50.0"))
        #expect(try imported("").description.contains("logits capped at 30.0"))
        #expect(
            !(try imported(#", "attn_logit_softcapping": null, "final_logit_softcapping": null"#).description
                .contains("capped")))
        #expect { try imported(#", "layer_types": ["full_attention"]"#) } throws: { "\($0)".contains("layer_types") }
        #expect { try imported(#", "final_logit_softcapping": 0"#) } throws: {
            "\($0)".contains("final_logit_softcapping")
        }
        #expect { try imported(#", "use_bidirectional_attention": true"#) } throws: {
            "\($0)".contains("use_bidirectional_attention")
        }
    }

    @Test("An unknown model_type names the supported ones")
    func unknownModelType() {
        let json = Data(#"{"model_type": "t5"}"#.utf8)
        #expect {
            try HuggingFace.architecture(configJSON: json, path: "x/config.json")
        } throws: { error in
            "\(error)".contains("model_type 't5' is not supported")
                && "\(error)".contains("gpt2, gpt_neox, llama, mistral, mpt, olmo2, opt, phi3, qwen2, qwen3")
        }
    }

    @Test(
        "Malformed configs throw errors naming the file and key",
        arguments: [
            (#"{"model_type": "gpt2", "n_embd": "wide"}"#, "n_embd"),
            (#"{"model_type": "llama", "rope_scaling": {"rope_type": "linear"}}"#, "rope_scaling.factor"),
            (
                #"{"model_type": "llama", "rope_parameters": {"rope_type": "mrope", "factor": 2}}"#,
                "rope_parameters.rope_type"
            ),
            (#"{"model_type": "gpt2", "n_embd": 100, "n_head": 12}"#, "not divisible by 12 heads"),
            (#"{"model_type": "mpt", "attn_config": {"alibi": false}}"#, "attn_config.alibi"),
            (#"{"model_type": "gpt2", "activation_function": "quick_gelu"}"#, "activation_function"),
            (#"{"n_embd": 768}"#, "model_type"),
            (#"[1, 2]"#, "config.json"),
        ])
    func malformed(json: String, mention: String) {
        #expect {
            try HuggingFace.architecture(configJSON: Data(json.utf8), path: "run/config.json")
        } throws: { error in
            let text = "\(error)"
            return text.contains("run/config.json") && text.contains(mention)
        }
    }

    @Test("A missing file is reported with its path")
    func missingFile() {
        #expect(throws: ArchitectureError.self) {
            try HuggingFace.architecture(configAt: URL(fileURLWithPath: "/nonexistent/config.json"))
        }
    }
}
