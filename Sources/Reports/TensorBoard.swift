import Foundation

/// TensorBoard event files, written directly: TFRecord framing (length, masked CRC32C of the length, data, masked
/// CRC32C of the data) around `Event` protocol buffers, encoded by hand (wall_time = 1, step = 2,
/// file_version = 3, summary = 5; `Summary.value` = 1; `Value.tag` = 1, `Value.simple_value` = 2).
public enum TensorBoardEvents {
    /// The first event of every file: `file_version: "brain.Event:2"`.
    public static func fileVersion(wallTime: Double) -> [UInt8] {
        var event = ProtocolBuffer()
        event.double(1, wallTime)
        event.string(3, "brain.Event:2")
        return record(event.bytes)
    }

    /// One event of scalar summaries at `step`.
    public static func scalars(wallTime: Double, step: Int, values: [(tag: String, value: Float)]) -> [UInt8] {
        var summary = ProtocolBuffer()
        for (tag, value) in values {
            var entry = ProtocolBuffer()
            entry.string(1, tag)
            entry.float(2, value, always: true)
            summary.message(1, entry.bytes)
        }
        var event = ProtocolBuffer()
        event.double(1, wallTime)
        event.varint(2, UInt64(bitPattern: Int64(step)))
        event.message(5, summary.bytes)
        return record(event.bytes)
    }

    /// A TFRecord: little-endian length, its masked CRC32C, the data, the data's masked CRC32C.
    public static func record(_ data: [UInt8]) -> [UInt8] {
        var length: [UInt8] = []
        withUnsafeBytes(of: UInt64(data.count).littleEndian) { length.append(contentsOf: $0) }
        var out = length
        withUnsafeBytes(of: CRC32C.masked(length).littleEndian) { out.append(contentsOf: $0) }
        out += data
        withUnsafeBytes(of: CRC32C.masked(data).littleEndian) { out.append(contentsOf: $0) }
        return out
    }
}

/// Protocol-buffer wire encoding, the few field kinds an event needs; default values are omitted as proto3 does.
struct ProtocolBuffer {
    var bytes: [UInt8] = []

    mutating func key(_ field: Int, _ wireType: UInt64) { append(varint: UInt64(field) << 3 | wireType) }

    mutating func append(varint value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7f) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    mutating func varint(_ field: Int, _ value: UInt64) {
        guard value != 0 else { return }
        key(field, 0)
        append(varint: value)
    }

    mutating func double(_ field: Int, _ value: Double) {
        guard value != 0 else { return }
        key(field, 1)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// A float; `always` for a member of a `oneof`, which is written even when zero.
    mutating func float(_ field: Int, _ value: Float, always: Bool = false) {
        guard value != 0 || always else { return }
        key(field, 5)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func string(_ field: Int, _ value: String) {
        guard !value.isEmpty else { return }
        message(field, Array(value.utf8))
    }

    mutating func message(_ field: Int, _ value: [UInt8]) {
        key(field, 2)
        append(varint: UInt64(value.count))
        bytes += value
    }
}

/// CRC-32C (Castagnoli), and TFRecord's masking of it.
public enum CRC32C {
    static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    public static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xff)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    /// `((crc >> 15) | (crc << 17)) + 0xa282ead8`, as TFRecord stores it.
    public static func masked(_ bytes: some Sequence<UInt8>) -> UInt32 {
        let crc = checksum(bytes)
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }
}

/// `extrapolate export tensorboard`: each run's extrapolation as scalars by training step, one folder per run, so
/// the curves sit next to the training loss in the TensorBoard users already run.
///
/// Tags: `extrapolation/ppl_<k>x` (perplexity at k × the trained length) and `extrapolation/ratio_<k>x`
/// (ppl(kL)/ppl(L)); a series other than the protocol itself (a rotary extension) gets its own level,
/// `extrapolation/yarn/ppl_16x`. Passkey retrieval (the daemon's passkey jobs) adds `passkey/accuracy_<k>x`, the
/// accuracy at k × L over every depth (`passkey/yarn/accuracy_<k>x` for an extension). Checkpoints without a step
/// in their name are left out (TensorBoard needs one).
public enum TensorBoardExport {
    /// What an export wrote.
    public struct Summary: Sendable, Hashable, Codable {
        /// Run name → event file written.
        public var files: [String: String]
        /// Scalars written, in all.
        public var scalars: Int
        /// Checkpoints left out because their names carry no step.
        public var withoutStep: [String]
    }

    /// Writes one event file per run under `logdir/RUN/`, replacing the file an earlier export wrote there.
    public static func write(_ rows: [StoredResultsReport.Row], to logdir: String, now: Date = Date()) throws -> Summary
    {
        let curves = Extrapolation.curves(rows).filter { $0.checkpointState != .replaced }
        let passkey = StoredPasskeyReport(rows.filter { $0.checkpointState != .replaced }).byLength
        var summary = Summary(files: [:], scalars: 0, withoutStep: [])
        let stepless =
            curves.filter { $0.step == nil }.map(\.checkpoint)
            + rows.filter { $0.passkey != nil && $0.step == nil }.map(\.checkpoint)
        summary.withoutStep = Array(Set(stepless)).sorted()
        // When each checkpoint's last result was stored: the events' wall time.
        var finished: [Int64: Double] = [:]
        for row in rows {
            finished[row.checkpointID] = max(finished[row.checkpointID] ?? 0, row.finished.timeIntervalSince1970)
        }
        for run in Array(Set(curves.map(\.run) + passkey.map(\.run))).sorted() {
            let folder = URL(fileURLWithPath: logdir).appendingPathComponent(run)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            var bytes = TensorBoardEvents.fileVersion(wallTime: now.timeIntervalSince1970)
            let mine = curves.filter { $0.run == run && $0.step != nil }
            let retrieval = passkey.filter { $0.run == run && $0.step != nil }
            for step in Array(Set(mine.compactMap(\.step) + retrieval.compactMap(\.step))).sorted() {
                var values: [(tag: String, value: Float)] = []
                var wallTime = 0.0
                for curve in mine where curve.step == step {
                    let prefix =
                        curve.series == curve.evaluationProtocol ? "extrapolation/" : "extrapolation/\(curve.series)/"
                    let ratios = curve.ratios
                    for point in curve.points {
                        let k = Alert.format(point.multiple)
                        values.append((prefix + "ppl_\(k)x", Float(point.perplexity)))
                        if point.multiple != 1, let ratio = ratios[point.multiple] {
                            values.append((prefix + "ratio_\(k)x", Float(ratio)))
                        }
                    }
                    wallTime = max(wallTime, finished[curve.checkpointID] ?? 0)
                }
                for entry in retrieval where entry.step == step {
                    let prefix = entry.series == "model" ? "passkey/" : "passkey/\(entry.series)/"
                    values.append((prefix + "accuracy_\(Alert.format(entry.multiple))x", Float(entry.accuracy)))
                    wallTime = max(wallTime, finished[entry.checkpointID] ?? 0)
                }
                summary.scalars += values.count
                bytes += TensorBoardEvents.scalars(wallTime: wallTime, step: step, values: values)
            }
            // TensorBoard reads a run's newest file: the new one replaces this tool's earlier ones.
            let name = String(format: "events.out.tfevents.%010d.extrapolate", Int(now.timeIntervalSince1970))
            let earlier = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
            let file = folder.appendingPathComponent(name)
            try Data(bytes).write(to: file)
            for old in earlier where old.hasSuffix(".extrapolate") && old != name {
                // An old event file left behind is shown beside the new one, not lost: not worth failing an export.
                try? FileManager.default.removeItem(at: folder.appendingPathComponent(old))
            }
            summary.files[run] = file.path
        }
        return summary
    }
}
