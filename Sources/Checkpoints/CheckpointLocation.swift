import Foundation

/// What a path given by a user holds: weights, and where the architecture comes from.
///
/// Recognised layouts:
/// - a Hugging Face folder: `config.json` plus `model.safetensors`, or `model.safetensors.index.json` and
///   its shards, or exactly one other `*.safetensors`;
/// - a bare `*.safetensors` file (or a folder holding exactly one) whose `__metadata__` carries an
///   Extrapolate architecture under `extrapolate.architecture`; a `config.json` next to it is used if the
///   metadata has none.
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

    /// A location from known parts.
    public init(weights: Weights, config: String?) {
        self.weights = weights
        self.config = config
    }

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
            if path.hasSuffix(".index.json") {
                return CheckpointLocation(weights: .index(path), config: config(in: folder))
            }
            guard path.hasSuffix(".safetensors") else {
                throw .notFound(path: path, reason: unsupportedFileReason(path))
            }
            return CheckpointLocation(weights: .file(path), config: config(in: folder))
        }
        let config = config(in: path)
        let index = (path as NSString).appendingPathComponent("model.safetensors.index.json")
        if manager.fileExists(atPath: index) { return CheckpointLocation(weights: .index(index), config: config) }
        let single = (path as NSString).appendingPathComponent("model.safetensors")
        if manager.fileExists(atPath: single) { return CheckpointLocation(weights: .file(single), config: config) }
        let contents = ((try? manager.contentsOfDirectory(atPath: path)) ?? []).sorted()
        let candidates = contents.filter { $0.hasSuffix(".safetensors") }
        if candidates.count == 1 {
            return CheckpointLocation(
                weights: .file((path as NSString).appendingPathComponent(candidates[0])), config: config)
        }
        if candidates.count > 1 {
            throw .notFound(
                path: path,
                reason:
                    "holds \(candidates.count) .safetensors files (\(candidates.prefix(4).joined(separator: ", "))…) "
                    + "and no model.safetensors.index.json; pass the file to use")
        }
        if let foreign = contents.first(where: { $0.hasSuffix(".bin") || $0.hasSuffix(".pt") || $0.hasSuffix(".pth") })
        {
            throw .notFound(path: path, reason: unsupportedFileReason(foreign))
        }
        throw .notFound(
            path: path,
            reason: "no safetensors checkpoint here (looked for model.safetensors, "
                + "model.safetensors.index.json and *.safetensors)")
    }

    private static func config(in folder: String) -> String? {
        let candidate = ((folder.isEmpty ? "." : folder) as NSString).appendingPathComponent("config.json")
        return FileManager.default.fileExists(atPath: candidate) ? candidate : nil
    }

    private static func unsupportedFileReason(_ name: String) -> String {
        if name.hasSuffix(".bin") || name.hasSuffix(".pt") || name.hasSuffix(".pth") {
            return
                "PyTorch pickle checkpoints (\((name as NSString).lastPathComponent)) are not read yet; convert with "
                + "`safetensors.torch.save_file(torch.load(path), \"model.safetensors\")` or `save_pretrained(..., safe_serialization=True)`"
        }
        return "not a checkpoint: expected a folder, a .safetensors file or a model.safetensors.index.json"
    }

    /// Opens the weights.
    public func open() throws(CheckpointError) -> Checkpoint {
        switch weights {
        case .file(let path): try Checkpoint(file: path)
        case .index(let path): try Checkpoint(index: path)
        }
    }
}
