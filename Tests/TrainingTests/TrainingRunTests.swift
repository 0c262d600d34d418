import Architecture
import Checkpoints
import Engine
import Foundation
import Kernels
import Testing
import TestSupport
import TokenData
import Training

/// `extrapolate train`'s run folder: checkpoints the engine reads back exactly, resume bit for bit (also after
/// kill -9 of a real process), and every refusal before step 1.
@Suite("Training runs")
struct TrainingRunTests {
    static let data = Repository.root.appendingPathComponent("Datasets/kjv/train.tokens.zst").path

    static func settings(steps: Int = 8) -> TrainingSettings {
        var settings = TrainingSettings(steps: steps)
        settings.batch = 2
        settings.saveEvery = 4
        settings.optimizer.warmup = 2
        return settings
    }

    static func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    @Test("a checkpoint holds exactly the weights trained, and the engine scores it as the trainer's model")
    func checkpointRoundTrip() throws {
        let folder = try ScratchFolder("train")
        defer { folder.remove() }
        let run = try TrainingRun(
            source: .architecture(.probe(.alibi)), data: Self.data, folder: folder.path("run"),
            settings: Self.settings(steps: 4))
        let path = try #require(try run.run())
        #expect(path.hasSuffix("step-4.safetensors"))
        let loaded = try LanguageModel.load(path, weights: .float32)
        #expect(loaded.trainedLength.tokens == 64)
        let tokens = try TokenDataset(path: Self.data).tokens(in: 1000..<1065)
        #expect(try loaded.logProbabilities(tokens) == run.model.logProbabilities(tokens))
        let log = try String(contentsOfFile: folder.path("run/train.jsonl"), encoding: .utf8)
        let lines = try log.split(separator: "\n").map { try JSONDecoder().decode(StepLine.self, from: Data($0.utf8)) }
        #expect(lines.map(\.step) == [1, 2, 3, 4])
        #expect(lines.allSatisfy { $0.loss.isFinite && $0.tokensPerSecond > 0 })
    }

    @Test("stopping and resuming gives the checkpoints and log of an uninterrupted run, bit for bit")
    func resumeInProcess() throws {
        try KernelThreads.exclusive(threads: 2) {
            let folder = try ScratchFolder("train")
            defer { folder.remove() }
            let whole = try TrainingRun(
                source: .architecture(.probe(.t5)), data: Self.data, folder: folder.path("whole"),
                settings: Self.settings())
            try whole.run()
            let parted = try TrainingRun(
                source: .architecture(.probe(.t5)), data: Self.data, folder: folder.path("parted"),
                settings: Self.settings())
            var steps = 0
            try parted.run(shouldStop: { steps == 3 }, progress: { _ in steps += 1 })
            #expect(parted.step == 3)
            let resumed = try TrainingRun(
                source: .architecture(.probe(.alibi)), data: Self.data, folder: folder.path("parted"),
                settings: TrainingSettings(steps: 1), resume: true)
            #expect(resumed.step == 3 && resumed.settings == Self.settings())
            try resumed.run()
            #expect(
                try Self.bytes(folder.path("whole/step-8.safetensors"))
                    == Self.bytes(folder.path("parted/step-8.safetensors")))
            let losses = { (path: String) throws -> [Double] in
                try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
                    try JSONDecoder().decode(StepLine.self, from: Data($0.utf8)).loss
                }
            }
            #expect(try losses(folder.path("whole/train.jsonl")) == losses(folder.path("parted/train.jsonl")))
        }
    }

    @Test("kill -9 of extrapolate train, then --resume: the same final checkpoint as an uninterrupted process")
    func resumeAfterKill() async throws {
        let folder = try ScratchFolder("train-kill")
        defer { folder.remove() }
        func arguments(_ out: String) -> [String] {
            [
                "train", "--preset", "probe-alibi", "--data", Self.data, "--steps", "120", "--batch", "4",
                "--save-every", "6", "--threads", "1", "--out", folder.path(out),
            ]
        }
        let (status, _, stderr) = try await Executable.run(arguments("whole"), in: folder)
        #expect(status == 0, "\(stderr)")
        let victim = try Executable.start(arguments("killed"), in: folder)
        let state = folder.path("killed/train-state.safetensors")
        // Watched from a thread of its own: a pool thread may come back only after the run has ended.
        try await onOwnThread {
            let deadline = Date().addingTimeInterval(120)
            while !FileManager.default.fileExists(atPath: state), victim.isRunning, Date() < deadline { usleep(5000) }
        }
        #expect(victim.isRunning, "the run ended before it could be killed")
        kill(victim.processIdentifier, SIGKILL)
        victim.waitUntilExit()
        let (resumedStatus, output, resumedError) = try await Executable.run(
            ["train", "--resume", "--data", Self.data, "--threads", "1", "--out", folder.path("killed")], in: folder)
        #expect(resumedStatus == 0, "\(resumedError)")
        #expect(output.contains("Trained 120 steps"))
        #expect(
            try Self.bytes(folder.path("whole/step-120.safetensors"))
                == Self.bytes(folder.path("killed/step-120.safetensors")))
        let steps = try String(contentsOfFile: folder.path("killed/train.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try JSONDecoder().decode(StepLine.self, from: Data($0.utf8)).step }
        #expect(steps == Array(1...120), "each step logged once")
    }

    @Test("SIGINT saves a checkpoint after the step in progress and says how to continue")
    func interrupt() async throws {
        let folder = try ScratchFolder("train-int")
        defer { folder.remove() }
        // Short windows, one thread and a bounded run: cheap however late the signal lands on a loaded machine.
        let process = try Executable.start(
            [
                "train", "--preset", "probe-nope", "--data", Self.data, "--steps", "3000", "--batch", "1",
                "--length", "16", "--threads", "1", "--save-every", "100000", "--out", folder.path("run"),
            ], in: folder)
        let log = folder.path("run/train.jsonl")
        while !FileManager.default.fileExists(atPath: log), process.isRunning {
            try await Task.sleep(for: .milliseconds(20))
        }
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let output = try String(contentsOfFile: folder.path("stdout"), encoding: .utf8)
        #expect(output.contains("Stopped at step") && output.contains("--resume"), "\(output)")
        let steps = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map {
            try JSONDecoder().decode(StepLine.self, from: Data($0.utf8)).step
        }
        let last = try #require(steps.last)
        #expect(last < 3000, "the run stopped early")
        let saved = try FileManager.default.contentsOfDirectory(atPath: folder.path("run")).filter {
            $0.hasPrefix("step-")
        }
        #expect(saved == ["step-\(last).safetensors"], "the checkpoint of the last step logged")
    }

    @Test(
        "a model from a Hugging Face folder trains into checkpoint-N folders transformers can load, and TensorBoard scalars"
    )
    func huggingFaceFolders() async throws {
        let folder = try ScratchFolder("train-hf")
        defer { folder.remove() }
        let source = Repository.model("llama-bytes")  // config.json and model.safetensors, 256 tokens of vocabulary
        func arguments(_ out: String, _ extra: [String] = []) -> [String] {
            [
                "train", "--checkpoint", source, "--data", Self.data, "--steps", "4", "--batch", "2", "--length", "32",
                "--save-every", "2", "--threads", "1", "--out", folder.path(out),
            ] + extra
        }
        let (status, _, errors) = try await Executable.run(arguments("hf", ["--tensorboard"]), in: folder)
        #expect(status == 0, "\(errors)")
        let made = try FileManager.default.contentsOfDirectory(atPath: folder.path("hf")).sorted()
        #expect(
            made.filter { !$0.hasPrefix("events.out.tfevents.") } == [
                "checkpoint-2", "checkpoint-4", "train-state.safetensors", "train.jsonl",
            ])
        #expect(made.filter { $0.hasPrefix("events.out.tfevents.") }.count == 1)
        let original = try SafetensorsFile(path: source + "/model.safetensors")
        for step in [2, 4] {
            let checkpoint = folder.path("hf/checkpoint-\(step)")
            #expect(try Self.bytes(checkpoint + "/config.json") == Self.bytes(source + "/config.json"))
            let written = try SafetensorsFile(path: checkpoint + "/model.safetensors")
            #expect(
                Dictionary(uniqueKeysWithValues: written.tensors.map { ($0.name, $0.shape) })
                    == Dictionary(uniqueKeysWithValues: original.tensors.map { ($0.name, $0.shape) }))
            #expect(written.metadata["format"] == "pt")
        }
        // The same run as one file: the engine reads both as the same model, trained at 32 tokens.
        let (plain, _, plainErrors) = try await Executable.run(
            arguments("plain", ["--format", "safetensors"]), in: folder)
        #expect(plain == 0, "\(plainErrors)")
        let folderModel = try LanguageModel.load(folder.path("hf/checkpoint-4"), weights: .float32)
        let fileModel = try LanguageModel.load(folder.path("plain/step-4.safetensors"), weights: .float32)
        #expect(folderModel.trainedLength.tokens == 32)
        let tokens = try TokenDataset(path: Self.data).tokens(in: 500..<533)
        #expect(try folderModel.logProbabilities(tokens) == fileModel.logProbabilities(tokens))
        // A preset has no config.json to write.
        let (refused, _, refusal) = try await Executable.run(
            [
                "train", "--preset", "probe-alibi", "--data", Self.data, "--steps", "1", "--format", "hf", "--out",
                folder.path("preset"),
            ], in: folder)
        #expect(refused != 0 && refusal.contains("--format hf needs a Hugging Face config.json"), "\(refusal)")
        // transformers loads the folder with no missing or unexpected tensor and gets the engine's loss (opt-in).
        let check = """
            import sys, torch
            from transformers import AutoModelForCausalLM
            model, info = AutoModelForCausalLM.from_pretrained(sys.argv[1], output_loading_info=True, dtype=torch.float32)
            assert not any(info.values()), info
            ids = torch.tensor([[int(t) for t in sys.argv[2].split(",")]])
            with torch.no_grad():
                logp = torch.log_softmax(model(ids[:, :-1]).logits.double(), -1)
            print(logp[0, torch.arange(ids.shape[1] - 1), ids[0, 1:]].sum().item())
            """
        try check.write(toFile: folder.path("check.py"), atomically: true, encoding: .utf8)
        let (probe, _, _) = try await Executable.run(
            ["python3", "-c", "import torch, transformers"], tool: "/usr/bin/env", in: folder)
        guard probe == 0 else {
            print("TrainingRunTests: transformers read-back skipped: python3 cannot import torch and transformers")
            return
        }
        let (read, output, readErrors) = try await Executable.run(
            [
                "python3", folder.path("check.py"), folder.path("hf/checkpoint-4"),
                tokens.map(String.init).joined(separator: ","),
            ],
            tool: "/usr/bin/env", in: folder)
        #expect(read == 0, "\(readErrors)")
        let theirs = try #require(Double(output.trimmingCharacters(in: .whitespacesAndNewlines)), "\(output)")
        let ours = try folderModel.logProbabilities(tokens).reduce(0, +)
        #expect(abs(theirs - ours) <= 1e-4 * abs(ours), "transformers \(theirs) vs engine \(ours)")
    }

    @Test(
        "refusals before step 1: a folder holding a run, data the embedding cannot take, a length past a learned table")
    func refusals() throws {
        let folder = try ScratchFolder("train-refuse")
        defer { folder.remove() }
        let run = try TrainingRun(
            source: .architecture(.probe(.nope)), data: Self.data, folder: folder.path("run"),
            settings: Self.settings(steps: 1))
        try run.run()
        #expect {
            try TrainingRun(
                source: .architecture(.probe(.nope)), data: Self.data, folder: folder.path("run"),
                settings: Self.settings())
        } throws: { "\($0)".contains("already holds a run") && "\($0)".contains("--resume") }
        #expect {
            try TrainingRun(
                source: .architecture(.probe(.nope)), data: Self.data, folder: folder.path("empty"),
                settings: Self.settings(), resume: true)
        } throws: { "\($0)".contains("no train-state.safetensors") }
        // gpt2's fixture: 96 tokens of vocabulary, a learned table of 256 positions.
        #expect {
            try TrainingRun(
                source: .checkpoint(path: Repository.model("gpt2"), architectureFile: nil), data: Self.data,
                folder: folder.path("vocabulary"), settings: Self.settings())
        } throws: { "\($0)".contains("vocabulary (256 tokens) exceeds the model's embedding (96)") }
        let small = folder.path("small.tokens.zst")
        let writer = try TokenWriter(path: small, dtype: .uint16)
        try writer.append((0..<2000).map { UInt16($0 % 96) })
        try writer.finish(vocabularySize: 96)
        var long = Self.settings()
        long.length = 300
        #expect {
            try TrainingRun(
                source: .checkpoint(path: Repository.model("gpt2"), architectureFile: nil), data: small,
                folder: folder.path("length"), settings: long)
        } throws: { "\($0)".contains("cannot train at 300 tokens") }
    }

    @Test("a NaN loss stops before the update and keeps the last good weights")
    func nonFiniteLoss() throws {
        let folder = try ScratchFolder("train-nan")
        defer { folder.remove() }
        var settings = Self.settings(steps: 6)
        settings.optimizer.learningRate = 1e30
        settings.optimizer.warmup = 0
        let run = try TrainingRun(
            source: .architecture(.probe(.alibi)), data: Self.data, folder: folder.path("run"), settings: settings)
        #expect {
            try run.run()
        } throws: { error in
            "\(error)".contains("NaN") && "\(error)".contains("last good weights") && "\(error)".contains("step-")
        }
        let saved = try FileManager.default.contentsOfDirectory(atPath: folder.path("run")).filter {
            $0.hasPrefix("step-")
        }
        #expect(saved == ["step-\(run.step).safetensors"])
        let file = try SafetensorsFile(path: folder.path("run/\(saved[0])"))
        for info in file.tensors {
            var values = [Float](repeating: 0, count: info.count)
            try values.withUnsafeMutableBufferPointer { try file.convert(info, into: $0.baseAddress!) }
            let finite = values.allSatisfy { $0.isFinite }
            #expect(finite, "\(info.name) holds a value that is not finite")
        }
    }
}
