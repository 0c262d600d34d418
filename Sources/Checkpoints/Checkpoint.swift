import Foundation

/// The tensors of one checkpoint, from one file (safetensors or PyTorch) or from the shards of a sharded one.
public final class Checkpoint: @unchecked Sendable {
    /// Where the weights were read from (a file or an index).
    public let path: String
    /// The files, in index order.
    public let files: [any TensorFile]
    /// The `__metadata__` of the first file (for a PyTorch file, its format).
    public var metadata: [String: String] { files.first?.metadata ?? [:] }
    /// What a PyTorch file carries besides its weights (nanoGPT's `model_args`, fairseq's `cfg`), by key.
    public var extras: [String: TorchExtra] { (files.first as? TorchFile)?.extras ?? [:] }
    private let location: [String: (file: Int, info: TensorInfo)]

    /// Every tensor name, sorted.
    public var names: [String] { location.keys.sorted() }

    /// Reads a single file: safetensors, or a PyTorch checkpoint (`.pt`, `.pth`, `.bin`, `.ckpt`).
    public convenience init(file path: String) throws(CheckpointError) {
        try self.init(path: path, files: [Self.open(path)], weightMap: nil)
    }

    /// A safetensors file by its name, anything else as a PyTorch file.
    static func open(_ path: String) throws(CheckpointError) -> any TensorFile {
        path.hasSuffix(".safetensors") ? try SafetensorsFile(path: path) : try TorchFile(path: path)
    }

    /// Reads a Hugging Face sharded checkpoint from its `model.safetensors.index.json` (or
    /// `pytorch_model.bin.index.json`).
    ///
    /// Every shard the `weight_map` names must exist and validate; every tensor it maps must be in the shard it
    /// names; a tensor stored in two shards is an error.
    public convenience init(index path: String) throws(CheckpointError) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .unreadable(path: path, reason: error.localizedDescription)
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw .badIndex(path: path, reason: "not a JSON object")
        }
        guard let map = object["weight_map"] as? [String: Any] else {
            throw .badIndex(path: path, reason: "missing 'weight_map' object")
        }
        var weightMap: [String: String] = [:]
        for (tensor, value) in map {
            guard let shard = value as? String, !shard.isEmpty, !shard.contains("/"), !shard.hasPrefix(".") else {
                throw .badIndex(
                    path: path, reason: "weight_map entry of '\(tensor)' must be a file name in the same folder")
            }
            weightMap[tensor] = shard
        }
        let folder = (path as NSString).deletingLastPathComponent
        var files: [any TensorFile] = []
        for shard in Set(weightMap.values).sorted() {
            let shardPath = (folder as NSString).appendingPathComponent(shard)
            guard FileManager.default.fileExists(atPath: shardPath) else {
                throw .missingShard(path: path, shard: shard)
            }
            files.append(try Self.open(shardPath))
        }
        try self.init(path: path, files: files, weightMap: weightMap)
    }

    private init(path: String, files: [any TensorFile], weightMap: [String: String]?) throws(CheckpointError) {
        self.path = path
        self.files = files
        var location: [String: (file: Int, info: TensorInfo)] = [:]
        for (index, file) in files.enumerated() {
            for info in file.tensors {
                if let previous = location[info.name] {
                    throw .badIndex(
                        path: path,
                        reason: "tensor '\(info.name)' is stored in both "
                            + "\(files[previous.file].path) and \(file.path)")
                }
                location[info.name] = (index, info)
            }
        }
        if let weightMap {
            for (tensor, shard) in weightMap.sorted(by: { $0.key < $1.key }) {
                guard let found = location[tensor] else {
                    throw .badIndex(
                        path: path, reason: "tensor '\(tensor)' is mapped to '\(shard)' but no shard holds it")
                }
                let actual = (files[found.file].path as NSString).lastPathComponent
                guard actual == shard else {
                    throw .badIndex(
                        path: path, reason: "tensor '\(tensor)' is mapped to '\(shard)' but stored in '\(actual)'")
                }
            }
        }
        self.location = location
    }

    /// The header entry of `name`, if present.
    public func info(_ name: String) -> TensorInfo? { location[name]?.info }

    /// The file that holds `name`, if present.
    public func file(of name: String) -> (any TensorFile)? { location[name].map { files[$0.file] } }

    /// Converts `name` to fp32 into `destination` (`info(name)!.count` values).
    public func convert(_ name: String, into destination: UnsafeMutablePointer<Float>) throws(CheckpointError) {
        guard let found = location[name] else { throw .missingTensor(path: path, tensor: name) }
        try files[found.file].convert(found.info, into: destination)
    }

    /// Copies `name`'s elements as stored (`info(name)!.count × dtype.size` bytes, C order) into `destination`.
    public func copyStored(_ name: String, into destination: UnsafeMutableRawPointer) throws(CheckpointError) {
        guard let found = location[name] else { throw .missingTensor(path: path, tensor: name) }
        try files[found.file].copyStored(found.info, into: destination)
    }

    /// `name` as fp32 values.
    public func floats(_ name: String) throws(CheckpointError) -> [Float] {
        guard let found = location[name] else { throw .missingTensor(path: path, tensor: name) }
        let info = found.info
        let file = files[found.file]
        var failure: CheckpointError?
        let values = [Float](unsafeUninitializedCapacity: info.count) { buffer, initialized in
            if let address = buffer.baseAddress {
                do throws(CheckpointError) { try file.convert(info, into: address) } catch { failure = error }
            }
            initialized = info.count
        }
        if let failure { throw failure }
        return values
    }
}
