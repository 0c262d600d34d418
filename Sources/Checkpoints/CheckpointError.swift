// Every way reading a checkpoint can fail, each naming the file, and where it applies the tensor and
// byte offset, plus what to do. Nothing in this target traps on bad bytes.

/// Errors of the `Checkpoints` target.
public enum CheckpointError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file or folder could not be opened or read.
    case unreadable(path: String, reason: String)
    /// The file is shorter (or longer) than its header says: typically a checkpoint still being written.
    case truncated(path: String, expectedBytes: Int, actualBytes: Int)
    /// The 8-byte length or the JSON header is malformed.
    case badHeader(path: String, offset: Int, reason: String)
    /// One tensor's entry is malformed (dtype, shape, offsets).
    case badTensor(path: String, tensor: String, offset: Int?, reason: String)
    /// A sharded index is malformed or names a shard or tensor that is not there.
    case badIndex(path: String, reason: String)
    /// A shard the index names is not there (yet: trainers often write the index first).
    case missingShard(path: String, shard: String)
    /// A tensor was asked for that the checkpoint does not have.
    case missingTensor(path: String, tensor: String)
    /// A tensor's dtype cannot be converted to fp32 (integers, bools, fp8).
    case unsupportedDType(path: String, tensor: String, dtype: String)
    /// No checkpoint was found where one was expected.
    case notFound(path: String, reason: String)
    /// A PyTorch pickle names a global that does not build data (`os.system`, `builtins.eval`, anything unknown):
    /// refused, never imported or called.
    case forbiddenGlobal(path: String, offset: Int, module: String, name: String)
    /// A file could not be written (full disk, no permission); whatever was at the path before is untouched.
    case unwritable(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason):
            return "\(path): cannot read: \(reason)"
        case .truncated(let path, let expected, let actual):
            return "\(path): truncated or still being written: the header describes \(expected) bytes but the file has "
                + "\(actual). Wait for the writer to finish, or re-save the checkpoint."
        case .badHeader(let path, let offset, let reason):
            let kind = reason.hasPrefix("pickle:") || reason.contains("zip") ? "PyTorch" : "safetensors"
            return "\(path): not a valid \(kind) file (byte offset \(offset)): \(reason)"
        case .badTensor(let path, let tensor, let offset, let reason):
            let at = offset.map { " (data byte offset \($0))" } ?? ""
            return "\(path): tensor '\(tensor)'\(at): \(reason)"
        case .badIndex(let path, let reason):
            return "\(path): invalid sharded-checkpoint index: \(reason)"
        case .missingShard(let path, let shard):
            return "\(path): shard '\(shard)' named in weight_map does not exist (still being written, or deleted)"
        case .missingTensor(let path, let tensor):
            return "\(path): no tensor named '\(tensor)'"
        case .unsupportedDType(let path, let tensor, let dtype):
            return "\(path): tensor '\(tensor)' has dtype \(dtype), which cannot be read as floating point; "
                + "weights must be F32, F16, BF16 or F64"
        case .notFound(let path, let reason):
            return "\(path): \(reason)"
        case .unwritable(let path, let reason):
            return "\(path): could not write: \(reason); anything already there is unchanged"
        case .forbiddenGlobal(let path, let offset, let module, let name):
            return "\(path): refused: the pickle at byte \(offset) would call \(module).\(name), which is not one of "
                + "the functions that rebuild tensors and containers; nothing was run. If this file is yours, re-save "
                + "only the weights (torch.save(model.state_dict(), path)) or convert it to safetensors"
        }
    }
}
