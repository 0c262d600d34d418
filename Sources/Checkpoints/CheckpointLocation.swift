import Foundation

/// What a path given by a user holds: weights, and where the architecture comes from.
///
/// Recognised layouts:
/// - a Hugging Face folder: `config.json` plus `model.safetensors`, or `model.safetensors.index.json` and
///   its shards, or exactly one other `*.safetensors`; or the PyTorch equivalents `pytorch_model.bin` and
///   `pytorch_model.bin.index.json`;
/// - a bare `*.safetensors` file (or a folder holding exactly one) whose `__metadata__` carries an
///   Extrapolate architecture under `extrapolate.architecture`; a `config.json` next to it is used if the
///   metadata has none;
/// - a PyTorch file (`.pt`, `.pth`, `.bin`, `.ckpt`; or a folder holding exactly one): nanoGPT's `ckpt.pt`
///   carries its architecture (`model_args`), others take `config.json` or `architecture.json` beside them.
public struct CheckpointLocation: Sendable, Hashable {
    /// The metadata key under which a bare safetensors file carries its architecture JSON.
    public static let architectureMetadataKey = "extrapolate.architecture"

    /// How the weights are stored.
    public enum Weights: Sendable, Hashable {
        /// One safetensors file.
        case file(String)
        /// A sharded checkpoint's index.
        case index(String)
    }

    /// The weights.
    public var weights: Weights
    /// A Hugging Face `config.json`, when there is one.
    public var config: String?
    /// An Extrapolate architecture JSON beside the weights (`architecture.json`), when there is one.
    public var architectureFile: String?

    /// A location from known parts.
    public init(weights: Weights, config: String?, architectureFile: String? = nil) {
        self.weights = weights
        self.config = config
        self.architectureFile = architectureFile
    }

    /// The file extensions of PyTorch checkpoints.
    public static let torchExtensions = [".pt", ".pth", ".bin", ".ckpt"]

    static func isTorch(_ name: String) -> Bool { torchExtensions.contains { name.hasSuffix($0) } }

    /// The path of the weights (file or index).
    public var weightsPath: String {
        switch weights {
        case .file(let path), .index(let path): path
        }
    }

    /// Finds the checkpoint at `path`.
    /// - Throws: `CheckpointError.notFound` saying what was looked for and what to do.
    public static func discover(_ path: String) throws(CheckpointError) -> CheckpointLocation {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .notFound(path: path, reason: "no such file or folder")
        }
        if !isDirectory.boolValue {
            let folder = (path as NSString).deletingLastPathComponent
            let architecture = architectureFile(in: folder)
            if path.hasSuffix(".index.json") {
                return CheckpointLocation(
                    weights: .index(path), config: config(in: folder), architectureFile: architecture)
            }
            guard path.hasSuffix(".safetensors") || isTorch(path) else {
                throw .notFound(
                    path: path,
                    reason: "not a checkpoint: expected a folder, a .safetensors or PyTorch "
                        + "(.pt, .pth, .bin) file, or a model.safetensors.index.json")
            }
            return CheckpointLocation(weights: .file(path), config: config(in: folder), architectureFile: architecture)
        }
        let config = config(in: path)
        let architecture = architectureFile(in: path)
        func at(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
        for (name, isIndex) in [
            ("model.safetensors.index.json", true), ("model.safetensors", false),
            ("pytorch_model.bin.index.json", true), ("pytorch_model.bin", false),
        ] where manager.fileExists(atPath: at(name)) {
            return CheckpointLocation(
                weights: isIndex ? .index(at(name)) : .file(at(name)), config: config, architectureFile: architecture)
        }
        let contents: [String]
        do {
            contents = try manager.contentsOfDirectory(atPath: path).sorted().filter { !$0.hasPrefix(".") }
        } catch {
            throw .unreadable(path: path, reason: "cannot list the folder: \(error.localizedDescription)")
        }
        for (kind, candidates) in [
            ("safetensors", contents.filter { $0.hasSuffix(".safetensors") }), ("PyTorch", contents.filter(isTorch)),
        ] {
            if candidates.count == 1 {
                return CheckpointLocation(
                    weights: .file(at(candidates[0])), config: config, architectureFile: architecture)
            }
            if candidates.count > 1 {
                throw .notFound(
                    path: path,
                    reason:
                        "holds \(candidates.count) \(kind) files (\(candidates.prefix(4).joined(separator: ", "))…) "
                        + "and no index; pass the file to use")
            }
        }
        throw .notFound(
            path: path,
            reason: "no checkpoint here (looked for model.safetensors, model.safetensors.index.json, "
                + "pytorch_model.bin, pytorch_model.bin.index.json, *.safetensors, *.pt, *.pth, *.bin)")
    }

    private static func config(in folder: String) -> String? {
        let candidate = ((folder.isEmpty ? "." : folder) as NSString).appendingPathComponent("config.json")
        return FileManager.default.fileExists(atPath: candidate) ? candidate : nil
    }

    private static func architectureFile(in folder: String) -> String? {
        let candidate = ((folder.isEmpty ? "." : folder) as NSString).appendingPathComponent("architecture.json")
        return FileManager.default.fileExists(atPath: candidate) ? candidate : nil
    }

    /// Opens the weights.
    public func open() throws(CheckpointError) -> Checkpoint {
        switch weights {
        case .file(let path): try Checkpoint(file: path)
        case .index(let path): try Checkpoint(index: path)
        }
    }
}
