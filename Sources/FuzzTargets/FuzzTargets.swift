import Architecture
import Checkpoints
import Evaluation
import Foundation
import Service
import TokenData

/// The parsers a file, a configuration or a request reaches, each as one entry that takes arbitrary bytes: what the
/// fuzzer (`Tests/fuzz/run.sh`, the `extrapolate-fuzz` executable) and the corpus replay (`FuzzRegressionTests`)
/// run. A parser may refuse an input with its typed error; it must never crash, hang, or allocate out of proportion
/// to the input.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// A `.safetensors` file: the 8-byte length, the JSON header, the tensor table, then every tensor read as fp32.
    case safetensors
    /// A sharded checkpoint's `model.safetensors.index.json` (with two small shards beside it).
    case shardIndex = "shard-index"
    /// A Hugging Face `config.json`, through whichever importer its `model_type` names.
    case configJSON = "config-json"
    /// Architecture JSON (`inspect --json`'s form and the DSL's).
    case architectureJSON = "architecture-json"
    /// A `.tokens.zst` file: metadata, seek table, frames, every window and the checksums.
    case tokens = "tokens-zst"
    /// The zip directory of a `torch.save` file.
    case zip
    /// The restricted unpickler, on a bare pickle stream.
    case pickle
    /// A whole PyTorch file (zip or legacy), as `CheckpointLocation` opens it.
    case torch
    /// The daemon's TOML configuration.
    case toml
    /// A `tokenizer.json`, loaded, then encoding a fixed text.
    case tokenizer = "tokenizer-json"

    /// Runs the target on `bytes`. Files are written under `scratch` (one folder per process, reused).
    public func run(_ bytes: [UInt8], scratch: FuzzScratch) {
        switch self {
        case .safetensors:
            let path = scratch.write(bytes, as: "model.safetensors")
            if let file = try? SafetensorsFile(path: path) {
                for info in file.tensors.prefix(16) where info.dtype.isConvertibleToFloat && info.count <= 1 << 20 {
                    _ = try? file.floats(info.name)
                }
            }
        case .shardIndex:
            let folder = scratch.folder("sharded")
            scratch.write(Self.smallShard(name: "a.weight"), at: folder + "/model-00001-of-00002.safetensors")
            scratch.write(Self.smallShard(name: "b.weight"), at: folder + "/model-00002-of-00002.safetensors")
            scratch.write(bytes, at: folder + "/model.safetensors.index.json")
            if let checkpoint = try? CheckpointLocation.discover(folder).open() {
                for name in checkpoint.names.prefix(8) { _ = try? checkpoint.floats(name) }
            }
        case .configJSON:
            // Strict first; the two imports differ only in the last step (keys that change the model and are not
            // read), so the lenient one runs only where that step refused: half the work per input, the same paths.
            do {
                _ = try HuggingFace.imported(configJSON: Data(bytes), path: "config.json")
            } catch .modelChangingKeys {
                _ = try? HuggingFace.imported(configJSON: Data(bytes), path: "config.json", allowingUnknownKeys: true)
            } catch {
                // Refused before that step: the lenient import would refuse the same way.
            }
        case .architectureJSON:
            let path = scratch.write(bytes, as: "architecture.json")
            _ = try? ArchitectureFile.load(path: path)
        case .tokens:
            let path = scratch.write(bytes, as: "data.tokens.zst")
            if let dataset = try? TokenDataset(path: path) {
                var windows = dataset.windows(length: 97)
                while let window = try? windows.next(), window != nil {}
                _ = try? dataset.verify()
            }
        case .zip:
            bytes.withUnsafeBytes { _ = try? ZipDirectory($0, path: "fuzz.zip") }
        case .pickle:
            bytes.withUnsafeBytes { _ = try? RestrictedUnpickler.check($0, path: "fuzz.pkl") }
        case .torch:
            let path = scratch.write(bytes, as: "model.pt")
            if let checkpoint = try? CheckpointLocation.discover(path).open() {
                for name in checkpoint.names.prefix(8) { _ = try? checkpoint.floats(name) }
            }
        case .toml:
            let text = String(decoding: bytes, as: UTF8.self)
            _ = try? TOMLReader.parse(text, file: "watch.toml")
            let path = scratch.write(bytes, as: "watch.toml")
            _ = try? DaemonConfiguration.load(file: path)
        case .tokenizer:
            if let tokenizer = try? Tokenizer(data: Data(bytes), path: "tokenizer.json") {
                _ = tokenizer.encode("Hello, wörld! 12345 \n\t  the end<|endoftext|>")
            }
        }
    }

    /// A valid one-tensor safetensors file (2 × 2 fp32), the shards an index names.
    static func smallShard(name: String) -> [UInt8] {
        let header = Array(#"{"\#(name)":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#.utf8)
        var bytes = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) } + header
        bytes += [UInt8](repeating: 0, count: 16)
        return bytes
    }
}

/// Where a fuzz target writes the files its parser opens: a folder per process (in `/dev/shm` when it exists, so no
/// disk is touched), each file rewritten for the next input.
public final class FuzzScratch: @unchecked Sendable {
    public let root: String

    public init() {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        root = (base as NSString).appendingPathComponent("extrapolate-fuzz-\(getpid())")
        // A folder that cannot be made shows up as every target refusing its input: visible in the coverage.
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    /// `bytes` written to `name` in the scratch folder; the path.
    @discardableResult
    public func write(_ bytes: [UInt8], as name: String) -> String {
        write(bytes, at: (root as NSString).appendingPathComponent(name))
    }

    /// `bytes` written to `path` (created or truncated); the path.
    @discardableResult
    public func write(_ bytes: [UInt8], at path: String) -> String {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if descriptor >= 0 {
            bytes.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let written = Foundation.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                    if written <= 0 { break }
                    offset += written
                }
            }
            close(descriptor)
        }
        return path
    }

    /// A sub-folder of the scratch folder, emptied of nothing (files in it are rewritten per input).
    public func folder(_ name: String) -> String {
        let path = (root as NSString).appendingPathComponent(name)
        // Exists already after the first input; a failure leaves the target reading nothing.
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Removes the scratch folder.
    public func remove() {
        // Best effort at exit: /dev/shm is emptied at reboot anyway.
        try? FileManager.default.removeItem(atPath: root)
    }
}
