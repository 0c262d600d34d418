import Checkpoints
import Foundation
import Testing
import TestSupport

/// Builds safetensors bytes by hand so every malformation can be produced.
struct SafetensorsBuilder {
    struct Entry {
        var name: String
        var dtype: String
        var shape: [Int]
        var data: [UInt8]
    }

    var entries: [Entry] = []
    var metadata: [String: String]? = nil

    mutating func add(_ name: String, _ dtype: String, _ shape: [Int], _ data: [UInt8]) {
        entries.append(Entry(name: name, dtype: dtype, shape: shape, data: data))
    }

    mutating func addFloats(_ name: String, _ values: [Float], shape: [Int]? = nil) {
        let bytes = values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
        add(name, "F32", shape ?? [values.count], bytes)
    }

    /// The header JSON (offsets contiguous in entry order) and the data buffer.
    func parts(offsets: [[Int]]? = nil) -> (header: String, data: [UInt8]) {
        var fields: [String] = []
        if let metadata {
            let pairs = metadata.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\(jsonString($0.value))" }
            fields.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var position = 0
        var data: [UInt8] = []
        for (index, entry) in entries.enumerated() {
            let range = offsets?[index] ?? [position, position + entry.data.count]
            position += entry.data.count
            data += entry.data
            fields.append(
                "\"\(entry.name)\":{\"dtype\":\"\(entry.dtype)\",\"shape\":\(entry.shape),\"data_offsets\":\(range)}")
        }
        return ("{" + fields.joined(separator: ",") + "}", data)
    }

    func bytes(offsets: [[Int]]? = nil, header override: String? = nil) -> [UInt8] {
        let (header, data) = parts(offsets: offsets)
        let text = Array((override ?? header).utf8)
        let length = UInt64(text.count)
        return withUnsafeBytes(of: length.littleEndian, Array.init) + text + data
    }

    private func jsonString(_ value: String) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: [value]), as: UTF8.self).dropFirst().dropLast()
            .description
    }
}

/// A fresh temporary folder per test.
struct TemporaryFolder {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("checkpoints-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let path = url.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }
    func remove() { try? FileManager.default.removeItem(at: url) }
}

@Suite("safetensors reading and validation")
struct SafetensorsTests {
    @Test("F32, F16, BF16 and F64 convert exactly; metadata is read")
    func dtypes() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        var builder = SafetensorsBuilder()
        builder.metadata = ["format": "pt", "note": "quote \" and ünïcode"]
        let values: [Float] = [1.5, -2.25, 0, 65280, 1.0 / 1024]
        builder.addFloats("a.f32", values)
        builder.add(
            "b.f16", "F16", [5], values.flatMap { withUnsafeBytes(of: Float16($0).bitPattern.littleEndian, Array.init) }
        )
        builder.add(
            "c.bf16", "BF16", [5],
            values.flatMap {
                withUnsafeBytes(of: UInt16(truncatingIfNeeded: $0.bitPattern >> 16).littleEndian, Array.init)
            })
        builder.add(
            "d.f64", "F64", [1, 5],
            values.flatMap { withUnsafeBytes(of: Double($0).bitPattern.littleEndian, Array.init) })
        builder.add("e.i64", "I64", [2], [UInt8](repeating: 1, count: 16))
        let path = try folder.write("model.safetensors", builder.bytes())
        let file = try SafetensorsFile(path: path)
        #expect(file.metadata == ["format": "pt", "note": "quote \" and ünïcode"])
        for name in ["a.f32", "b.f16", "c.bf16", "d.f64"] {
            #expect(try file.floats(name) == values, "\(name)")
        }
        #expect(file.byName["d.f64"]?.shape == [1, 5])
        #expect { try file.floats("e.i64") } throws: {
            ($0 as? CheckpointError).map { "\($0)".contains("I64") } ?? false
        }
        #expect { try file.floats("nope") } throws: { "\($0)".contains("'nope'") }
    }

    @Test("Every malformation is a typed error naming the file, and the tensor or offset")
    func malformed() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        var builder = SafetensorsBuilder()
        builder.addFloats("first", [1, 2, 3, 4])
        builder.addFloats("second", [5, 6])
        let good = builder.bytes()
        #expect((try? SafetensorsFile(path: folder.write("good.safetensors", good))) != nil)

        func expectError(_ name: String, _ bytes: [UInt8], _ check: (CheckpointError) -> Bool) throws {
            let path = try folder.write(name, bytes)
            #expect(
                performing: { _ = try SafetensorsFile(path: path) },
                throws: { error in
                    guard let error = error as? CheckpointError else { return false }
                    return "\(error)".contains(name) && check(error)
                })
        }
        try expectError("truncated.safetensors", Array(good.dropLast(3))) {
            if case .truncated = $0 { return true } else { return false }
        }
        try expectError("tiny.safetensors", [1, 2, 3]) { if case .truncated = $0 { return true } else { return false } }
        try expectError("huge-header.safetensors", [0, 0, 0, 0, 0, 0, 0, 1] + Array(good.dropFirst(8))) {
            if case .badHeader = $0 { return true } else { return false }
        }
        try expectError(
            "header-past-end.safetensors", withUnsafeBytes(of: UInt64(5000).littleEndian, Array.init) + [123]
        ) {
            if case .truncated = $0 { return true } else { return false }
        }
        try expectError("not-json.safetensors", builder.bytes(header: "{\"first\": [1, 2")) {
            if case .badHeader = $0 { return true } else { return false }
        }
        try expectError("array.safetensors", builder.bytes(header: "[1, 2, 3]")) {
            if case .badHeader = $0 { return true } else { return false }
        }
        var unknown = builder
        unknown.entries[1].dtype = "F12"
        try expectError("dtype.safetensors", unknown.bytes()) {
            "\($0)".contains("'second'") && "\($0)".contains("F12")
        }
        var wrongSize = builder
        wrongSize.entries[0].shape = [5]
        try expectError("size.safetensors", wrongSize.bytes()) {
            "\($0)".contains("'first'") && "\($0)".contains("needs 20")
        }
        try expectError("overlap.safetensors", builder.bytes(offsets: [[0, 16], [8, 16]])) {
            "\($0)".contains("'second'") || "\($0)".contains("'first'")
        }
        try expectError("hole.safetensors", builder.bytes(offsets: [[0, 16], [20, 28]])) {
            "\($0)".contains("'second'") && "\($0)".contains("hole")
        }
        try expectError("reversed.safetensors", builder.bytes(offsets: [[16, 0], [16, 24]])) {
            "\($0)".contains("'first'")
        }
        try expectError("negative.safetensors", builder.bytes(offsets: [[-4, 12], [12, 20]])) {
            "\($0)".contains("'first'")
        }
        var badShape = builder
        badShape.entries[0].shape = [-4]
        try expectError("shape.safetensors", badShape.bytes()) { "\($0)".contains("'first'") }
        try expectError("trailing.safetensors", good + [0, 0, 0, 0]) {
            if case .truncated = $0 { return true } else { return false }
        }
        try expectError(
            "overflow.safetensors",
            builder.bytes(
                header:
                    #"{"first":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,16]},"second":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}}"#
            )
        ) {
            "\($0)".contains("'first'")
        }
    }

    @Test("Random corruption never crashes: every mutated file either opens or throws a CheckpointError")
    func fuzz() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        var builder = SafetensorsBuilder()
        builder.metadata = ["format": "pt"]
        builder.addFloats("layer.weight", (0..<24).map(Float.init), shape: [4, 6])
        builder.addFloats("layer.bias", [1, 2, 3, 4])
        let good = builder.bytes()
        var generator = TestRandom(seed: 7)
        var opened = 0
        for trial in 0..<300 {
            var bytes = good
            switch trial % 3 {
            case 0: bytes = Array(bytes.prefix(Int(generator.next() % UInt64(bytes.count))))
            case 1:
                for _ in 0..<3 {
                    bytes[Int(generator.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: generator.next())
                }
            default:
                let index = 8 + Int(generator.next() % UInt64(bytes.count - 8))
                bytes[index] = [UInt8(ascii: "9"), UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "-")][trial % 4]
            }
            let path = try folder.write("fuzz.safetensors", bytes)
            do {
                let file = try SafetensorsFile(path: path)
                for info in file.tensors { _ = try? file.floats(info.name) }
                opened += 1
            } catch {
                // Typed throws: the only way out besides success is a CheckpointError with a message.
                #expect(!error.description.isEmpty)
            }
        }
        #expect(opened < 300)
    }
}
