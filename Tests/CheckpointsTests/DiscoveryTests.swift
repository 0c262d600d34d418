import Checkpoints
import Foundation
import Testing

@Suite("checkpoint discovery and sharded checkpoints")
struct DiscoveryTests {
    func smallFile(_ names: [String]) -> [UInt8] {
        var builder = SafetensorsBuilder()
        for (index, name) in names.enumerated() { builder.addFloats(name, [Float(index), 1]) }
        return builder.bytes()
    }

    @Test("A symbolic link loop and a link back to the watched folder end the scan, and find each checkpoint once")
    func symlinkLoops() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let runs = folder.url.appendingPathComponent("runs")
        try FileManager.default.createDirectory(
            at: runs.appendingPathComponent("alibi"), withIntermediateDirectories: true)
        try Data(smallFile(["a"])).write(to: runs.appendingPathComponent("alibi/step-5.safetensors"))
        try FileManager.default.createSymbolicLink(
            atPath: runs.appendingPathComponent("self").path, withDestinationPath: "self")
        try FileManager.default.createSymbolicLink(
            atPath: runs.appendingPathComponent("back").path, withDestinationPath: runs.path)
        try FileManager.default.createSymbolicLink(
            atPath: runs.appendingPathComponent("zz-alias").path, withDestinationPath: "alibi")
        let found = Discovery.scan(runs.path)
        #expect(found.candidates.map(\.path) == [runs.appendingPathComponent("alibi/step-5.safetensors").path])
        #expect(found.unreadable.isEmpty)
    }

    @Test("A training run's folder: its checkpoints, never the state it resumes from nor its TensorBoard file")
    func trainingRunFolder() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let fm = FileManager.default
        for (run, checkpoints) in [("files", ["step-2.safetensors", "step-4.safetensors"]), ("hf", ["checkpoint-2"])] {
            let base = folder.url.appendingPathComponent("runs/\(run)")
            try fm.createDirectory(at: base, withIntermediateDirectories: true)
            for name in checkpoints {
                if name.hasPrefix("checkpoint-") {
                    try fm.createDirectory(at: base.appendingPathComponent(name), withIntermediateDirectories: true)
                    try Data("{}".utf8).write(to: base.appendingPathComponent(name + "/config.json"))
                    try Data(smallFile(["a"])).write(to: base.appendingPathComponent(name + "/model.safetensors"))
                } else {
                    try Data(smallFile(["a"])).write(to: base.appendingPathComponent(name))
                }
            }
            try Data(smallFile(["p.0"])).write(to: base.appendingPathComponent(Discovery.trainingStateFile))
            try Data([1]).write(to: base.appendingPathComponent("events.out.tfevents.1.host.extrapolate-train"))
            try Data("{}\n".utf8).write(to: base.appendingPathComponent("train.jsonl"))
        }
        let found = Discovery.scan(folder.url.appendingPathComponent("runs").path)
        #expect(
            found.candidates.map { ($0.path as NSString).lastPathComponent } == [
                "step-2.safetensors", "step-4.safetensors", "checkpoint-2",
            ])
    }

    @Test("Hugging Face folders, sharded folders, bare files, and what is not a checkpoint")
    func layouts() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let fm = FileManager.default
        let hf = folder.url.appendingPathComponent("hf")
        try fm.createDirectory(at: hf, withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: hf.appendingPathComponent("config.json"))
        try Data(smallFile(["a"])).write(to: hf.appendingPathComponent("model.safetensors"))
        let found = try CheckpointLocation.discover(hf.path)
        #expect(found.weights == .file(hf.appendingPathComponent("model.safetensors").path))
        #expect(found.config == hf.appendingPathComponent("config.json").path)

        let bare = try folder.write("probe.safetensors", smallFile(["x"]))
        #expect(try CheckpointLocation.discover(bare).weights == .file(bare))

        let torch = folder.url.appendingPathComponent("torch")
        try fm.createDirectory(at: torch, withIntermediateDirectories: true)
        try Data([1, 2, 3]).write(to: torch.appendingPathComponent("pytorch_model.bin"))
        #expect(
            try CheckpointLocation.discover(torch.path).weights
                == .file(torch.appendingPathComponent("pytorch_model.bin").path))
        // Found, but three bytes are neither a zip nor a legacy torch.save file.
        #expect { try CheckpointLocation.discover(torch.path).open() } throws: { "\($0)".contains("neither a zip") }

        let two = folder.url.appendingPathComponent("two")
        try fm.createDirectory(at: two, withIntermediateDirectories: true)
        try Data(smallFile(["a"])).write(to: two.appendingPathComponent("a.safetensors"))
        try Data(smallFile(["b"])).write(to: two.appendingPathComponent("b.safetensors"))
        #expect { try CheckpointLocation.discover(two.path) } throws: { "\($0)".contains("2 safetensors files") }

        let empty = folder.url.appendingPathComponent("empty")
        try fm.createDirectory(at: empty, withIntermediateDirectories: true)
        #expect { try CheckpointLocation.discover(empty.path) } throws: {
            "\($0)".contains("no checkpoint here")
        }
        #expect { try CheckpointLocation.discover(folder.url.appendingPathComponent("missing").path) } throws: {
            "\($0)".contains("no such file")
        }
    }

    @Test("A sharded index is complete only if every shard exists and holds what the map says")
    func sharded() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        _ = try folder.write("model-00001-of-00002.safetensors", smallFile(["a", "b"]))
        _ = try folder.write("model-00002-of-00002.safetensors", smallFile(["c"]))
        func index(_ map: [String: String]) throws -> String {
            let object: [String: Any] = ["metadata": ["total_size": 24], "weight_map": map]
            return try folder.write(
                "model.safetensors.index.json", Array(JSONSerialization.data(withJSONObject: object)))
        }
        let good = try index([
            "a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
            "c": "model-00002-of-00002.safetensors",
        ])
        let location = try CheckpointLocation.discover(folder.url.path)
        #expect(location.weights == .index(good))
        let checkpoint = try location.open()
        #expect(checkpoint.names == ["a", "b", "c"])
        #expect(try checkpoint.floats("c") == [0, 1])
        #expect(try checkpoint.floats("b") == [1, 1])

        _ = try index(["a": "model-00001-of-00002.safetensors", "c": "model-00003-of-00003.safetensors"])
        #expect { try Checkpoint(index: good) } throws: { "\($0)".contains("model-00003-of-00003.safetensors") }
        _ = try index(["a": "model-00002-of-00002.safetensors"])
        #expect { try Checkpoint(index: good) } throws: { "\($0)".contains("'a'") }
        _ = try index(["a": "../elsewhere.safetensors"])
        #expect { try Checkpoint(index: good) } throws: { "\($0)".contains("same folder") }
        _ = try folder.write("model.safetensors.index.json", Array("{\"weight_map\": 3}".utf8))
        #expect { try Checkpoint(index: good) } throws: { "\($0)".contains("weight_map") }
        // A shard truncated mid-write makes the whole checkpoint incomplete.
        _ = try index(["a": "model-00001-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"])
        _ = try folder.write("model-00002-of-00002.safetensors", Array(smallFile(["c"]).dropLast(2)))
        #expect { try Checkpoint(index: good) } throws: { "\($0)".contains("truncated") }
    }
}
