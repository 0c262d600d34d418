import Foundation

/// What a checkpoint's path says about it: the run it belongs to and the training step, read by the naming
/// schemes trainers use. The run is the folder the checkpoints sit in; the step comes from the name.
public struct CheckpointName: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    /// The run: the name of the folder holding the checkpoint (for `checkpoint-N/`, the folder holding that).
    public var run: String
    /// The training step, when the name carries one.
    public var step: Int?
    /// The scheme that matched.
    public var scheme: CheckpointNamingScheme

    public init(run: String, step: Int?, scheme: CheckpointNamingScheme) {
        self.run = run
        self.step = step
        self.scheme = scheme
    }

    /// The name of the checkpoint at `path` (a folder, a weights file or an index inside a checkpoint folder).
    public init(path: String) {
        var components = URL(fileURLWithPath: path).standardizedFileURL.pathComponents.filter { $0 != "/" }
        // A weights file or index inside a `checkpoint-N/` or `stepN/` folder names the folder.
        if let last = components.last, components.count >= 2,
            CheckpointNamingScheme.folderSchemes.contains(where: {
                $0.step(in: components[components.count - 2]) != nil
            }),
            last.hasSuffix(".safetensors") || last.hasSuffix(".index.json") || last.hasSuffix(".bin")
        {
            components.removeLast()
        }
        let name = components.last ?? path
        let run = components.dropLast().last ?? "."
        for scheme in CheckpointNamingScheme.allCases {
            if let step = scheme.step(in: name) {
                self.init(run: run, step: step, scheme: scheme)
                return
            }
        }
        if name == "ckpt.pt" {
            self.init(run: run, step: nil, scheme: .nanoGPT)
            return
        }
        let isFile = CheckpointNamingScheme.weightsStem(name) != nil
        self.init(run: isFile ? run : name, step: nil, scheme: .plain)
    }

    /// `run step N`, or the run alone.
    public var description: String { step.map { "\(run) step \($0)" } ?? run }

    /// By run, then step (a checkpoint without a step last).
    public static func < (a: CheckpointName, b: CheckpointName) -> Bool {
        if a.run != b.run { return a.run < b.run }
        return (a.step ?? .max) < (b.step ?? .max)
    }
}

/// The naming schemes of checkpoints inside a run folder, tried in order.
public enum CheckpointNamingScheme: String, Sendable, Hashable, Codable, CaseIterable {
    /// Hugging Face Trainer: a folder `checkpoint-N/`.
    case huggingFace = "checkpoint-N/"
    /// A folder named for its step: `stepN/`, `step-N/`, `step_N/` (OLMo, many scripts), `global_stepN/`
    /// (DeepSpeed), `iter_N/` (Megatron-LM), each holding a checkpoint `score` reads.
    case stepFolder = "stepN/"
    /// `step-N.safetensors` (the demo runs).
    case stepFile = "step-N.safetensors"
    /// Any `NAME-N.safetensors` or `NAME_N.safetensors` (or `.pt`, `.pth`).
    case numberedFile = "*-N.safetensors"
    /// fairseq: `checkpoint_E_U.pt` (epoch E, update U: the step). `checkpoint_last.pt` and `checkpoint_best.pt`
    /// are copies of one of them, with no step in the name (their content is evaluated once).
    case fairseq = "checkpoint_E_U.pt"
    /// Composer: `epE-baB-rank0.pt` (batch B: the step).
    case composer = "epE-baB-rank0.pt"
    /// nanoGPT: `ckpt.pt`, overwritten in place; the step is its `iter_num`, read from the file.
    case nanoGPT = "ckpt.pt"
    /// A folder or file whose name carries no step.
    case plain

    /// The step this scheme reads from `name` (a file or folder name), or `nil` when it does not match.
    public func step(in name: String) -> Int? {
        switch self {
        case .huggingFace:
            guard name.hasPrefix("checkpoint-") else { return nil }
            return Self.number(name.dropFirst("checkpoint-".count))
        case .stepFolder:
            guard !name.contains(".") else { return nil }
            for prefix in ["global_step", "step", "iter"] where name.hasPrefix(prefix) {
                var rest = name.dropFirst(prefix.count)
                if rest.first == "-" || rest.first == "_" { rest = rest.dropFirst() }
                return Self.number(rest)
            }
            return nil
        case .stepFile:
            guard name.hasPrefix("step-"), let stem = Self.weightsStem(name) else { return nil }
            return Self.number(stem.dropFirst("step-".count))
        case .numberedFile:
            // Shards (`model-00001-of-00002.safetensors`) are parts of one checkpoint, not steps.
            guard let stem = Self.weightsStem(name), !name.contains("-of-"), !name.hasPrefix("checkpoint_"),
                !name.hasPrefix("ep")
            else { return nil }
            guard let separator = stem.lastIndex(where: { $0 == "-" || $0 == "_" }) else { return nil }
            return Self.number(stem[stem.index(after: separator)...])
        case .fairseq:
            guard name.hasPrefix("checkpoint_"), name.hasSuffix(".pt") else { return nil }
            let parts = name.dropFirst("checkpoint_".count).dropLast(".pt".count).split(separator: "_")
            guard parts.count == 2, Self.number(parts[0]) != nil else { return nil }
            return Self.number(parts[1])
        case .composer:
            guard name.hasPrefix("ep"), name.hasSuffix("-rank0.pt") else { return nil }
            let parts = name.dropLast("-rank0.pt".count).split(separator: "-")
            guard parts.count == 2, Self.number(parts[0].dropFirst(2)) != nil, parts[1].hasPrefix("ba") else {
                return nil
            }
            return Self.number(parts[1].dropFirst(2))
        case .nanoGPT, .plain:
            return nil
        }
    }

    /// The name without a weights extension (`.safetensors`, `.pt`, `.pth`), or `nil` for any other name.
    static func weightsStem(_ name: String) -> Substring? {
        for suffix in [".safetensors", ".pt", ".pth"] where name.hasSuffix(suffix) {
            return name.dropLast(suffix.count)
        }
        return nil
    }

    /// PyTorch files in run and checkpoint folders that hold training state, not a model.
    public static func isTrainingState(_ name: String) -> Bool {
        ["optimizer.pt", "scheduler.pt", "training_args.bin", "scaler.pt"].contains(name)
            || name.hasPrefix("rng_state") || name.hasPrefix("optimizer")
    }

    /// The schemes that name folders.
    public static let folderSchemes: [CheckpointNamingScheme] = [.huggingFace, .stepFolder]

    private static func number(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.allSatisfy(\.isASCII), text.allSatisfy(\.isNumber) else { return nil }
        return Int(text)
    }
}
