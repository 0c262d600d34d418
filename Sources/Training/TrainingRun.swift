import Architecture
import Checkpoints
import Engine
import Evaluation
import Foundation
import Kernels
import TokenData

/// How training windows are drawn from the data.
public enum DataOrder: String, Sendable, Hashable, Codable, CaseIterable {
    /// Windows of `L + 1` tokens at uniformly random starts (`train.py`, nanoGPT).
    case random
    /// Consecutive windows of `L + 1` tokens (each starting `L` after the last), wrapping at the end.
    case sequential
}

/// Everything a run is: what `extrapolate train` takes, with the paper's probe settings (`Datasets/demo/train.py`)
/// as defaults.
public struct TrainingSettings: Sendable, Hashable, Codable {
    /// Optimizer steps.
    public var steps: Int
    /// Tokens per window that predict (`L`); `nil`: the architecture's trained length.
    public var length: Int?
    /// Windows per micro-batch.
    public var batch: Int = 32
    /// Micro-batches per step (gradients accumulated: `batch × accumulation` windows a step).
    public var accumulation: Int = 1
    /// Fixes the initial weights and the data order.
    public var seed: UInt64 = 1234
    public var order: DataOrder = .random
    /// A checkpoint every this many steps (and always after the last).
    public var saveEvery: Int?
    public var optimizer = OptimizerSettings()
    /// The text of a Hugging Face `config.json` describing the model, when checkpoints are to be Hugging Face folders:
    /// `checkpoint-N/` with this `config.json` and `model.safetensors` under the config's tensor names, which
    /// `transformers`' `from_pretrained` loads; `nil`: `step-N.safetensors` files.
    public var huggingFaceConfig: String?

    public init(steps: Int) { self.steps = steps }
}

/// Where the weights of a new run come from.
public enum ModelSource: Sendable {
    /// A declared architecture, initialised from the seed (`Initialization`).
    case architecture(Architecture)
    /// An existing checkpoint's weights (and architecture): fine-tuning, or continuing another run's weights.
    case checkpoint(path: String, architectureFile: String?)
}

/// One line of `train.jsonl`.
public struct StepLine: Sendable, Codable, Hashable {
    public var step: Int
    public var loss: Double
    public var learningRate: Double
    public var gradientNorm: Double
    public var tokensPerSecond: Double
    /// Seconds since this process started training.
    public var seconds: Double
}

/// A training run in a folder: `step-N.safetensors` checkpoints the daemon evaluates as they appear (the architecture
/// JSON in their metadata), `train-state.safetensors` (the exact fp32 parameters, AdamW's moments and the data
/// order's state, so `--resume` continues bit for bit), and `train.jsonl`.
public final class TrainingRun: @unchecked Sendable {
    public let folder: String
    public let settings: TrainingSettings
    public let trainer: Trainer
    /// The window length `L`.
    public let length: Int
    /// The steps done.
    public private(set) var step = 0
    let dataset: TokenDataset
    var generator: SeededGenerator
    var cursor = 0
    private var started = Date()

    public var model: LanguageModel { trainer.model }

    static let stateFile = Discovery.trainingStateFile
    static let logFile = "train.jsonl"

    /// Prepares a run: checks the folder, the data and the model before any step, and restores the state when
    /// resuming.
    /// - Parameter resume: continue the run in `folder` (its own settings and model; `source` is then ignored).
    public init(
        source: ModelSource, data: String, folder: String, settings: TrainingSettings, resume: Bool = false
    ) throws(TrainingError) {
        self.folder = folder
        let state = try Self.prepareFolder(folder, resume: resume)
        var settings = settings
        let architecture: Architecture
        if let state {
            settings = state.settings
            architecture = state.architecture
        } else {
            switch source {
            case .architecture(let declared): architecture = declared
            case .checkpoint(let path, let file):
                do {
                    architecture = try LanguageModel.load(path, architectureFile: file, weights: .float32).architecture
                } catch { throw .engine(error) }
            }
        }
        self.settings = settings
        do { dataset = try TokenDataset(path: data) } catch { throw .refused("--data: \(error)") }
        let model = try Self.model(
            architecture, source: state == nil ? source : .architecture(architecture), seed: settings.seed,
            folder: folder)
        length = settings.length ?? architecture.trainedLength
        try Self.check(settings, model: model, dataset: dataset, data: data, length: length)
        trainer = try Trainer(model: model, settings: settings.optimizer)
        generator = SeededGenerator(seed: settings.seed)
        if let state { try restore(state) }
    }

    /// Trains until `settings.steps`, or until `shouldStop` says so after a step (SIGINT, SIGTERM); saves a checkpoint
    /// every `saveEvery` steps and at the end. A NaN loss saves the last good weights and throws `.nonFinite`.
    /// - Returns: the checkpoint written last.
    @discardableResult
    public func run(shouldStop: () -> Bool = { false }, progress: (StepLine) -> Void = { _ in }) throws(TrainingError)
        -> String?
    {
        started = Date()
        var lastSaved: String? = nil
        let tokensPerStep = Double(settings.batch * settings.accumulation * length)
        while step < settings.steps {
            let windows = try nextWindows()
            let stepStarted = Date()
            let report: Trainer.StepReport
            do {
                report = try trainer.step(
                    windows: windows,
                    learningRate: settings.optimizer.learningRate(step: step + 1, of: settings.steps))
            } catch {
                guard case .nonFinite(let bad, let loss, _) = error, step > 0 else { throw error }
                throw .nonFinite(step: bad, loss: loss, saved: try save())  // the last good weights
            }
            step += 1
            let line = StepLine(
                step: step, loss: report.loss, learningRate: report.learningRate, gradientNorm: report.gradientNorm,
                tokensPerSecond: tokensPerStep / max(Date().timeIntervalSince(stepStarted), 1e-9),
                seconds: Date().timeIntervalSince(started))
            try append(line)
            progress(line)
            if let every = settings.saveEvery, every > 0, step % every == 0, step < settings.steps {
                lastSaved = try save()
            }
            if shouldStop() { break }
        }
        if lastSaved != checkpointPath(step: step) { lastSaved = try save() }
        return lastSaved
    }

    /// Where the checkpoint of `step` goes: `step-N.safetensors`, or the folder `checkpoint-N` with a Hugging Face
    /// config.
    func checkpointPath(step: Int) -> String {
        (folder as NSString).appendingPathComponent(
            settings.huggingFaceConfig == nil ? "step-\(step).safetensors" : "checkpoint-\(step)")
    }

    /// Writes the checkpoint of this step (the weights, as the architecture names them; `step-N.safetensors`, or a
    /// Hugging Face `checkpoint-N/` folder), then the state that resumes from it. Each file (folder) is written whole
    /// and renamed into place: a full disk leaves the previous ones intact.
    @discardableResult
    public func save() throws(TrainingError) -> String {
        let architecture = model.architecture
        let json: String
        do { json = String(decoding: try architecture.canonicalJSON(), as: UTF8.self) } catch {
            throw .refused("the architecture cannot be written as JSON: \(error)")
        }
        let path = checkpointPath(step: step)
        let tensors = model.bound.namedTensors(of: architecture, weights: true).map { ($0.name, $0.shape, $0.values) }
        // The architecture and L travel with the weights even in a Hugging Face folder: its config.json gives the
        // position table's size, not the length trained at. "format: pt" is what transformers asks of metadata.
        let metadata = [
            CheckpointLocation.architectureMetadataKey: json, TrainedLength.metadataKey: "\(length)",
            "extrapolate.step": "\(step)", "format": "pt",
            "extrapolate.training":
                "extrapolate train: step \(step) of \(settings.steps), batch \(settings.batch)x\(settings.accumulation)x"
                + "\(length), AdamW lr \(settings.optimizer.learningRate), seed \(settings.seed), \(dataset.path)",
        ]
        if let config = settings.huggingFaceConfig {
            try Self.writeFolder(path, config: config, tensors: tensors, metadata: metadata)
        } else {
            try write(tensors, metadata: metadata, to: path)
        }
        try saveState()
        return path
    }

    /// A Hugging Face checkpoint folder at `path` (`config.json`, `model.safetensors`), built under a hidden name
    /// beside it (which discovery ignores) and renamed into place once complete.
    static func writeFolder(
        _ path: String, config: String, tensors: [(String, [Int], FloatBuffer)], metadata: [String: String]
    ) throws(TrainingError) {
        let manager = FileManager.default
        let url = URL(fileURLWithPath: path)
        let pid = ProcessInfo.processInfo.processIdentifier
        let hidden = { (tag: String) in
            url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(tag)-\(pid)").path
        }
        let (temporary, replaced) = (hidden("tmp"), hidden("old"))
        func fail(_ reason: String) -> TrainingError {
            try? manager.removeItem(atPath: temporary)  // hidden, and the failure is what is reported
            return .checkpoint(.unwritable(path: path, reason: reason))
        }
        try? manager.removeItem(atPath: temporary)  // a leftover of this pid's earlier attempt, if any
        guard mkdir(temporary, 0o755) == 0 else {
            throw fail("cannot create \(temporary): \(String(cString: strerror(errno)))")
        }
        do {
            try Data(config.utf8).write(to: URL(fileURLWithPath: temporary + "/config.json"))
        } catch {
            throw fail((error as NSError).localizedDescription)
        }
        do { try write(tensors, metadata: metadata, to: temporary + "/model.safetensors") } catch {
            guard case .checkpoint(.unwritable(_, let reason)) = error else { throw error }
            throw fail(reason)
        }
        // A folder cannot be renamed onto a full one: the earlier folder of this step (a NaN stop re-saving it) is
        // moved aside first and removed once the new one is in place.
        let existed = manager.fileExists(atPath: path)
        if existed, rename(path, replaced) != 0 {
            throw fail("cannot move the earlier \(path) aside: \(String(cString: strerror(errno)))")
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            if existed { _ = rename(replaced, path) }
            throw fail("cannot rename \(temporary) into place: \(reason)")
        }
        if existed { try? manager.removeItem(atPath: replaced) }  // hidden; the new folder is in place
    }

    func restoreProgress(step: Int, generator state: UInt64, cursor: Int) {
        self.step = step
        generator = SeededGenerator(seed: state)
        self.cursor = cursor
    }

    // MARK: - Data

    private func nextWindows() throws(TrainingError) -> [[Int32]] {
        let count = settings.batch * settings.accumulation
        var windows: [[Int32]] = []
        windows.reserveCapacity(count)
        let available = dataset.count - length - 1
        for _ in 0..<count {
            let start: Int
            switch settings.order {
            case .random: start = Int(generator.next() % UInt64(available + 1))
            case .sequential:
                if cursor > available { cursor = 0 }
                start = cursor
                cursor += length
            }
            do { windows.append(try dataset.tokens(in: start..<start + length + 1)) } catch {
                throw .refused("\(dataset.path): \(error)")
            }
        }
        return windows
    }

    // MARK: - Checks

    /// The folder must be writable, and hold no other run unless resuming.
    private static func prepareFolder(_ folder: String, resume: Bool) throws(TrainingError) -> SavedState? {
        let manager = FileManager.default
        // Folder by folder with mkdir(2), so the reason is the system's own ("Permission denied", "No such file…").
        var partial = folder.hasPrefix("/") ? "" : "."
        for component in folder.split(separator: "/") {
            partial += "/\(component)"
            if mkdir(partial, 0o755) != 0, errno != EEXIST {
                throw .refused("--out \(folder): cannot create \(partial): \(String(cString: strerror(errno)))")
            }
        }
        guard manager.isWritableFile(atPath: folder) else {
            throw .refused("--out \(folder): the folder is not writable; choose another --out")
        }
        let statePath = (folder as NSString).appendingPathComponent(stateFile)
        let contents = (try? manager.contentsOfDirectory(atPath: folder)) ?? []  // created above: readable
        let held = contents.filter {
            $0 == stateFile || $0 == logFile || $0.hasPrefix("step-") || $0.hasPrefix("checkpoint-")
        }
        if resume {
            guard manager.fileExists(atPath: statePath) else {
                throw .refused("--resume: \(folder) holds no \(stateFile), so there is no run to continue")
            }
            return try SavedState.read(statePath)
        }
        if !held.isEmpty {
            throw .refused(
                "--out \(folder) already holds a run (\(held.sorted().prefix(3).joined(separator: ", "))); pass "
                    + "--resume to continue it, or choose another --out")
        }
        return nil
    }

    private static func check(
        _ settings: TrainingSettings, model: LanguageModel, dataset: TokenDataset, data: String, length: Int
    ) throws(TrainingError) {
        if dataset.metadata.vocabularySize > model.vocabulary {
            throw .refused(
                "\(data): its vocabulary (\(dataset.metadata.vocabularySize) tokens) exceeds the model's embedding "
                    + "(\(model.vocabulary)); tokenize the data for this model or declare a larger vocabulary")
        }
        if case .unsupported(let reason) = model.support(at: length) {
            throw .unsupportedLength(length: length, reason: reason)
        }
        guard dataset.count >= length + 2 else {
            throw .refused("\(data): \(dataset.count) tokens, too few for one window of \(length + 1)")
        }
        guard settings.steps >= 1, settings.batch >= 1, settings.accumulation >= 1 else {
            throw .refused("steps, batch and accumulation must each be at least 1")
        }
    }

    // MARK: - Model

    private static func model(_ architecture: Architecture, source: ModelSource, seed: UInt64, folder: String)
        throws(TrainingError) -> LanguageModel
    {
        if case .checkpoint(let path, let file) = source {
            do { return try LanguageModel.load(path, architectureFile: file, weights: .float32) } catch {
                throw .engine(error)
            }
        }
        // Initial weights through a file, the one way into a bound model (hidden from discovery, then removed).
        let path = (folder as NSString).appendingPathComponent(
            ".init-\(ProcessInfo.processInfo.processIdentifier).safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }  // a leftover is hidden and harmless
        let weights = Initialization.weights(for: architecture, seed: seed).map { tensor in
            (tensor.name, tensor.shape, FloatBuffer(tensor.values))
        }
        let json: String
        do { json = String(decoding: try architecture.canonicalJSON(), as: UTF8.self) } catch {
            throw .refused("the architecture cannot be written as JSON: \(error)")
        }
        try write(weights, metadata: [CheckpointLocation.architectureMetadataKey: json], to: path)
        do { return try LanguageModel.load(path, weights: .float32) } catch { throw .engine(error) }
    }

    // MARK: - Files

    static func write(_ tensors: [(String, [Int], FloatBuffer)], metadata: [String: String], to path: String)
        throws(TrainingError)
    {
        do {
            try SafetensorsWriter.write(
                tensors.map { name, shape, values in
                    SafetensorsWriter.Tensor(
                        name: name, shape: shape,
                        values: UnsafeBufferPointer(start: values.pointer, count: values.count))
                }, metadata: metadata, to: path)
        } catch { throw .checkpoint(error) }
        withExtendedLifetime(tensors) {}
    }

    private func write(_ tensors: [(String, [Int], FloatBuffer)], metadata: [String: String], to path: String)
        throws(TrainingError)
    {
        try Self.write(tensors, metadata: metadata, to: path)
    }

    private func append(_ line: StepLine) throws(TrainingError) {
        let path = (folder as NSString).appendingPathComponent(Self.logFile)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            var data = try encoder.encode(line)
            data.append(0x0A)
            if !FileManager.default.fileExists(atPath: path) {
                FileManager.default.createFile(atPath: path, contents: nil)
            }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            defer { try? handle.close() }  // written and flushed by the write itself; nothing to lose at close
            try handle.seekToEnd()
            try handle.write(contentsOf: data)
        } catch { throw .refused("\(path): cannot append: \(error.localizedDescription)") }
    }
}
