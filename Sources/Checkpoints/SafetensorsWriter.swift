import Foundation

/// Writes fp32 tensors as a safetensors file (the format `SafetensorsFile` reads): gradients, and the checkpoints
/// training saves.
///
/// The file is written under a temporary name beside `path` (`.<name>.tmp-<pid>`, which discovery ignores) and renamed
/// onto it only once complete and flushed, so a reader (the daemon) never sees half a file, and a failed write (a full
/// disk) leaves what was at `path` before.
public enum SafetensorsWriter {
    /// One tensor: its name, shape and `shape.product` fp32 values.
    public struct Tensor {
        public var name: String
        public var shape: [Int]
        public var values: UnsafeBufferPointer<Float>

        public init(name: String, shape: [Int], values: UnsafeBufferPointer<Float>) {
            self.name = name
            self.shape = shape
            self.values = values
        }
    }

    /// Writes `tensors` (in their order) with `metadata` (`__metadata__`) to `path`.
    public static func write(_ tensors: [Tensor], metadata: [String: String] = [:], to path: String)
        throws(CheckpointError)
    {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for tensor in tensors {
            precondition(
                tensor.values.count == tensor.shape.reduce(1, *), "\(tensor.name): values do not fill its shape")
            let bytes = tensor.values.count * 4
            header[tensor.name] = ["dtype": "F32", "shape": tensor.shape, "data_offsets": [offset, offset + bytes]]
            offset += bytes
        }
        var json: Data
        do { json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]) } catch {
            throw .unwritable(path: path, reason: "the header is not JSON: \(error)")
        }
        // The data starts 8-aligned (the header padded with spaces, as the reference writer does).
        json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)").path
        guard FileManager.default.createFile(atPath: temporary, contents: nil) else {
            throw .unwritable(path: path, reason: "cannot create \(temporary) (\(String(cString: strerror(errno))))")
        }
        do {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporary))
            // A failed close after a successful synchronize loses nothing: the bytes are on disk.
            defer { try? handle.close() }
            var length = UInt64(json.count).littleEndian
            try handle.write(contentsOf: Data(bytes: &length, count: 8))
            try handle.write(contentsOf: json)
            for tensor in tensors {
                // Little-endian fp32, as x86-64 holds it.
                try handle.write(contentsOf: Data(buffer: tensor.values))
            }
            try handle.synchronize()
        } catch {
            // Cleaning up the partial temporary file; the write's own error is what is reported.
            try? FileManager.default.removeItem(atPath: temporary)
            throw .unwritable(path: path, reason: "\(error.localizedDescription)")
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            // Cleaning up; the rename's error is what is reported.
            try? FileManager.default.removeItem(atPath: temporary)
            throw .unwritable(path: path, reason: reason)
        }
    }
}
