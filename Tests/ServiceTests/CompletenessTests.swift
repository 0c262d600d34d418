import Checkpoints
import Foundation
import TestSupport
import Testing

@Suite struct CompletenessDecidedByTheReader {
    let demo = try! Data(contentsOf: URL(fileURLWithPath: Repository.demo("alibi", step: 500)))

    func check(_ path: String) throws -> Completeness {
        Completeness.check(try CheckpointLocation.discover(path))
    }

    @Test func aWholeFileIsCompleteAndEveryShorterOneIsNot() throws {
        let scratch = try ScratchFolder("completeness")
        defer { scratch.remove() }
        let path = scratch.path("step-1.safetensors")
        try demo.write(to: URL(fileURLWithPath: path))
        #expect(try check(path) == .complete)
        // Every prefix a writer can leave behind: inside the length, inside the header, inside the data.
        for cut in [4, 8, 100, demo.count / 2, demo.count - 1] {
            try demo.prefix(cut).write(to: URL(fileURLWithPath: path))
            guard case .incomplete = try check(path) else {
                Issue.record("a file cut at \(cut) of \(demo.count) bytes was not incomplete: \(try check(path))")
                continue
            }
        }
    }

    @Test func aHeaderThatLiesAboutOffsetsIsInvalid() throws {
        let scratch = try ScratchFolder("completeness")
        defer { scratch.remove() }
        var (json, data) = try SafetensorsBytes.header(of: demo)
        let name = try #require(json.keys.sorted().first { $0 != "__metadata__" })
        var entry = try #require(json[name] as? [String: Any])
        let offsets = try #require(entry["data_offsets"] as? [Int])
        entry["data_offsets"] = [offsets[0] + 4, offsets[1]]  // a hole before it; the last offset still matches
        json[name] = entry
        let path = scratch.path("step-1.safetensors")
        try SafetensorsBytes.assemble(json, data: data).write(to: URL(fileURLWithPath: path))
        guard case .invalid(let error) = try check(path) else {
            Issue.record("a lying header was not invalid")
            return
        }
        #expect(error.description.contains(name))
        // Offsets past the end say the file is not all there.
        entry["data_offsets"] = [offsets[0], offsets[1] + data.count]
        json[name] = entry
        data = data + Data(count: 0)
        try SafetensorsBytes.assemble(json, data: data).write(to: URL(fileURLWithPath: path))
        #expect(try check(path) != .complete)
    }

    @Test func aShardedCheckpointNeedsEveryShard() throws {
        let scratch = try ScratchFolder("completeness")
        defer { scratch.remove() }
        let source = Repository.model("bloom-12h")
        let folder = scratch.path("checkpoint-10")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let names = try FileManager.default.contentsOfDirectory(atPath: source).sorted()
        for name in names where !name.hasSuffix("-00009-of-00009.safetensors") {
            try FileManager.default.copyItem(atPath: "\(source)/\(name)", toPath: "\(folder)/\(name)")
        }
        guard case .incomplete(let reason) = try check(folder) else {
            Issue.record("a checkpoint without its last shard was not incomplete")
            return
        }
        #expect(reason.contains("00009-of-00009"))
        let last = try Data(contentsOf: URL(fileURLWithPath: "\(source)/model-00009-of-00009.safetensors"))
        try last.prefix(last.count - 10).write(to: URL(fileURLWithPath: "\(folder)/model-00009-of-00009.safetensors"))
        #expect(try check(folder) != .complete, "a shard still being written")
        try last.write(to: URL(fileURLWithPath: "\(folder)/model-00009-of-00009.safetensors"))
        #expect(try check(folder) == .complete)
    }

    @Test func temporaryNames() {
        for name in [".step-1.safetensors.x7Gq", "step-1.safetensors.tmp", "tmp-checkpoint-500", "a.incomplete", "b~"] {
            #expect(Completeness.isTemporary(name), "\(name)")
        }
        for name in ["step-1.safetensors", "checkpoint-500", "model.safetensors.index.json"] {
            #expect(!Completeness.isTemporary(name), "\(name)")
        }
    }
}

@Suite struct DiscoveryInRunFolders {
    @Test func everySchemeAndNothingTemporary() throws {
        let scratch = try ScratchFolder("discovery")
        defer { scratch.remove() }
        let demo = Repository.demo("alibi", step: 500)
        let manager = FileManager.default
        func make(_ path: String) throws {
            try manager.createDirectory(
                atPath: (scratch.path(path) as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try manager.copyItem(atPath: demo, toPath: scratch.path(path))
        }
        try make("runs/alibi/step-500.safetensors")
        try make("runs/alibi/.step-1000.safetensors.tmp")
        try make("runs/alibi/step-1000.safetensors.incomplete")
        try make("runs/rope/model_300.safetensors")
        try make("runs/hf/checkpoint-20/model.safetensors")
        try make("runs/hf/tmp-checkpoint-40/model.safetensors")
        try make("runs/olmo/step1000/model.safetensors")
        try manager.copyItem(atPath: Repository.model("gpt2"), toPath: scratch.path("runs/final"))
        let found = Discovery.scan(scratch.path("runs"))
        let summary = found.candidates.map {
            "\($0.name.run):\($0.name.step.map(String.init) ?? "-"):\($0.name.scheme.rawValue)"
        }
        #expect(
            Set(summary)
                == [
                    "alibi:500:step-N.safetensors", "rope:300:*-N.safetensors", "hf:20:checkpoint-N/", "final:-:plain",
                    "olmo:1000:stepN/",
                ])
        let hf = try #require(found.candidates.first { $0.name.run == "hf" })
        #expect(hf.path.hasSuffix("runs/hf/checkpoint-20") && hf.files.count == 1)
        let plain = try #require(found.candidates.first { $0.name.run == "final" })
        #expect(plain.files.map { ($0.path as NSString).lastPathComponent }.contains("config.json"))
        #expect(found.folders.contains(scratch.path("runs/hf/checkpoint-20")), "checkpoint folders are watched too")
    }
}
