import Architecture
import Checkpoints
import Engine
import Foundation
import Kernels
import Testing
import TestSupport

/// Loads a fixture's checkpoint with its own architecture, or with a changed one.
func fixtureModel(_ name: String, change: ((inout Architecture) -> Void)? = nil) throws -> LanguageModel {
    let location = try CheckpointLocation.discover(Fixtures.models.appendingPathComponent(name).path)
    let checkpoint = try location.open()
    let found = try LanguageModel.architecture(for: location, checkpoint: checkpoint)
    var (architecture, ignored) = (found.architecture, found.ignoredSuffixes)
    change?(&architecture)
    return try LanguageModel(architecture: architecture, checkpoint: checkpoint, location: location, ignoring: ignored)
}

func maxDifference(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).map { abs($0 - $1) }.max() ?? .infinity }

/// Rewrites every attention node of an architecture.
func mapAttention(_ layers: [Layer], _ transform: (inout Attention) -> Void) -> [Layer] {
    var architecture = Architecture(name: "layers", trainedLength: 1, layers: layers)
    architecture = architecture.mappingLeaves { layer in
        guard case .attention(var node) = layer else { return layer }
        transform(&node)
        return .attention(node)
    }
    return architecture.layers
}

@Suite("Engine behaviour")
struct EngineBehaviourTests {
    @Test(
        "The fixtures can tell position methods apart: a wrong method or layout misses by far more than 1e-4",
        arguments: [
            ("llama-gqa", AttentionPosition.rotary(layout: .interleaved)),
            ("bloom-8h", AttentionPosition.none),
            ("gpt_neox-partial", AttentionPosition.rotary(fraction: 0.5)),
            ("spec-alibi", AttentionPosition.alibi(maxBias: 4)),
            ("spec-xpos", AttentionPosition.xpos(XPos(scaleBase: 512, gamma: 0.4, base: 10000))),
            ("llama-yarn", AttentionPosition.rotary()),
        ])
    func negativeControls(_ name: String, wrong: AttentionPosition) throws {
        let reference = try Fixtures.reference(name)
        let model = try fixtureModel(name) { architecture in
            architecture.layers = mapAttention(architecture.layers) { $0.position = wrong }
        }
        let difference = maxDifference(try model.logProbabilities(reference.tokens), reference.logprobs)
        #expect(difference > 1e-2, "\(name) with \(wrong.name): max |Δ| only \(difference)")
    }

    @Test("A sliding window changes the numbers only past the window")
    func windowOnlyMattersPastIt() throws {
        let reference = try Fixtures.reference("spec-rotary-window")
        let full = try fixtureModel("spec-rotary-window") { architecture in
            architecture.layers = mapAttention(architecture.layers) { $0.window = nil }
        }
        let values = try full.logProbabilities(reference.tokens)
        // Token t+1's prediction reads positions ≤ t; with window 16 and 2 layers, t < 16 sees everything.
        #expect(maxDifference(Array(values.prefix(16)), Array(reference.logprobs.prefix(16))) <= 1e-4)
        #expect(maxDifference(values, reference.logprobs) > 1e-2)
    }

    @Test(
        "Causal: changing token t never changes the predictions before it",
        arguments: ["gpt2", "llama-gqa", "spec-fire", "mpt"])
    func causality(_ name: String) throws {
        var tokens = try Fixtures.reference(name).tokens
        let model = try fixtureModel(name)
        let t = tokens.count * 2 / 3
        // Both passes with the same thread count: its row split changes sgemm's rounding.
        let (before, after) = try KernelThreads.exclusive {
            let before = try model.logProbabilities(tokens)
            tokens[t] = (tokens[t] + 1) % Int32(model.vocabulary)
            return (before, try model.logProbabilities(tokens))
        }
        #expect(maxDifference(Array(before.prefix(t - 1)), Array(after.prefix(t - 1))) == 0)
        #expect(before[t - 1] != after[t - 1])
    }

    @Test("Chunking of the feed-forward, of the LM head rows and of its vocabulary changes the result only by rounding")
    func chunking() throws {
        let reference = try Fixtures.reference("llama-gqa")
        let model = try fixtureModel("llama-gqa")
        let whole = try model.logProbabilities(reference.tokens)
        model.feedForwardChunk = 7
        model.logitsChunk = 5
        model.vocabularySlice = 13
        let chunked = try model.logProbabilities(reference.tokens)
        #expect(maxDifference(whole, chunked) <= 1e-5)
    }

    @Test("The thread count changes the result only by sgemm rounding", arguments: ["gpt2", "mpt", "llama-gqa"])
    func threadCount(_ name: String) throws {
        let reference = try Fixtures.reference(name)
        let model = try fixtureModel(name)
        let one = try KernelThreads.exclusive(threads: 1) { try model.logProbabilities(reference.tokens) }
        let three = try KernelThreads.exclusive(threads: 3) { try model.logProbabilities(reference.tokens) }
        #expect(maxDifference(one, three) <= 1e-5)
        #expect(maxDifference(one, reference.logprobs) <= 1e-4)
    }

    @Test("A binding error lists every missing, unused and misshaped tensor at once")
    func bindingErrors() throws {
        #expect(
            performing: {
                _ = try fixtureModel("gpt2") { architecture in
                    architecture.layers = architecture.layers.map { layer in
                        switch layer {
                        case .positionEmbedding(var node):
                            node.key = "transformer.positions"; return .positionEmbedding(node)
                        case .tokenEmbedding(var node):
                            node.vocabulary = 100
                            return .tokenEmbedding(node)
                        default: return layer
                        }
                    }
                }
            },
            throws: { error in
                guard case EngineError.binding(_, let missing, let unused, let misshaped) = error else { return false }
                return missing == ["transformer.positions.weight"] && unused == ["transformer.wpe.weight"]
                    && misshaped == [
                        ShapeMismatch(name: "transformer.wte.weight", expected: [100, 32], actual: "[96, 32]")
                    ]
            })
    }

    @Test(
        "A position method's tensors are bound or reported missing: never a method silently without its weights",
        arguments: [
            ("spec-t5", "relative_attention_bias"), ("spec-kerple-log", "kerple.r2"), ("spec-fire", "fire.mlp.2"),
        ])
    func positionTensorsAreRequired(_ name: String, _ dropped: String) throws {
        let folder = try ScratchFolder("position-tensors")
        defer { folder.remove() }
        let location = try CheckpointLocation.discover(Repository.model(name))
        let architecture = try LanguageModel.architecture(for: location, checkpoint: try location.open()).architecture
        let stripped = URL(fileURLWithPath: folder.path("model.safetensors"))
        try rewrite(
            URL(fileURLWithPath: location.weightsPath), to: stripped, renaming: { $0 },
            dropping: { $0.contains(dropped) })
        #expect(
            performing: {
                _ = try LanguageModel(architecture: architecture, checkpoint: try Checkpoint(file: stripped.path))
            },
            throws: { error in
                guard case EngineError.binding(_, let missing, _, _) = error else { return false }
                return !missing.isEmpty && missing.allSatisfy { $0.contains(dropped) }
            })
    }

    @Test(
        "MPT expansion_ratio ≠ 4 binds whichever width the file holds (transformers' 4 × d_model or MosaicML's ratio), and says so"
    )
    func mptExpansionRatio() throws {
        let hf = try LanguageModel.load(Repository.model("mpt-expansion-hf"))
        #expect(hf.notes.first?.contains("holds 192 rows") == true)
        let mosaic = try LanguageModel.load(Repository.model("mpt-expansion-mosaic"))
        #expect(mosaic.notes.isEmpty, "the config's ratio matches the tensors: nothing to say")
    }

    @Test("Lengths past a learned table, foreign tokens and empty windows are refused with a reason")
    func refusals() throws {
        let model = try fixtureModel("gpt2-bf16")
        #expect(
            performing: { _ = try model.logProbabilities([Int32](repeating: 1, count: 129)) },
            throws: { error in
                guard case EngineError.unsupportedLength(129, let reason) = error else { return false }
                return reason.contains("128 rows")
            })
        #expect(
            performing: { _ = try model.logProbabilities([1, 2, 96]) },
            throws: { error in
                if case EngineError.tokenOutOfRange(2, 96, 96) = error { return true } else { return false }
            })
        #expect(throws: EngineError.tooFewTokens(count: 1)) { _ = try model.logProbabilities([3]) }
    }

    @Test("A bare safetensors file without architecture metadata or config.json says what is missing")
    func noArchitecture() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let bare = folder.appendingPathComponent("weights.safetensors")
        try rewrite(Fixtures.models.appendingPathComponent("spec-nope/model.safetensors"), to: bare) { $0 }
        #expect(
            performing: { _ = try LanguageModel.load(bare.path) },
            throws: { error in
                guard case EngineError.noArchitecture = error else { return false }
                return "\(error)".contains("weights.safetensors") && "\(error)".contains("config.json")
            })
    }

    @Test("Checkpoints saved from the base model (no 'transformer.' prefix, as on the Hub) bind and match")
    func basePrefix() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = Fixtures.models.appendingPathComponent("gpt2")
        try FileManager.default.copyItem(
            at: source.appendingPathComponent("config.json"),
            to: folder.appendingPathComponent("config.json"))
        try rewrite(
            source.appendingPathComponent("model.safetensors"), to: folder.appendingPathComponent("model.safetensors")
        ) {
            $0.hasPrefix("transformer.") ? String($0.dropFirst("transformer.".count)) : $0
        }
        let reference = try Fixtures.reference("gpt2")
        let values = try LanguageModel.load(folder.path).logProbabilities(reference.tokens)
        #expect(maxDifference(values, reference.logprobs) <= 1e-4)
    }
}

func temporaryFolder() throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("engine-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    return folder
}

/// Copies a safetensors file's tensors under new names, without metadata.
func rewrite(
    _ source: URL, to destination: URL, renaming: (String) -> String, dropping: (String) -> Bool = { _ in false }
) throws {
    let file = try SafetensorsFile(path: source.path)
    var header: [String: Any] = [:]
    var data = Data()
    for info in file.tensors where !dropping(info.name) {
        header[renaming(info.name)] = [
            "dtype": info.dtype.rawValue, "shape": info.shape,
            "data_offsets": [data.count, data.count + info.dataOffsets.count],
        ]
        data.append(contentsOf: file.bytes(of: info))
    }
    let json = try JSONSerialization.data(withJSONObject: header)
    var bytes = withUnsafeBytes(of: UInt64(json.count).littleEndian) { Data($0) }
    bytes.append(json)
    bytes.append(data)
    try bytes.write(to: destination)
}
