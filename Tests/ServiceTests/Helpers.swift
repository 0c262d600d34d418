import Evaluation
import Foundation
import Logging
import ResultStore
import TestSupport
import Testing

@testable import Service

/// Writes files the way trainers do: in pieces, slowly, through temporary names.
enum Trainer {
    /// Writes `bytes` to `path` in `pieces` chunks, `pause` seconds apart (the file is visibly incomplete meanwhile).
    static func write(_ bytes: Data, to path: String, pieces: Int = 4, pause: Double = 0.15) async throws {
        FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        defer { try? handle.close() }
        let size = (bytes.count + pieces - 1) / pieces
        var offset = 0
        while offset < bytes.count {
            try handle.write(contentsOf: bytes[offset..<min(offset + size, bytes.count)])
            try handle.synchronize()
            offset += size
            try await Task.sleep(for: .seconds(pause))
        }
    }

    /// Rewrites `path` in place (truncate, then write in pieces): what nanoGPT and `torch.save` do.
    static func rewrite(_ path: String, with bytes: Data) async throws {
        try await write(bytes, to: path)
    }

    /// Copies a folder's files one by one in the order given.
    static func copy(_ names: [String], from source: String, to folder: String, pause: Double = 0.15) async throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for name in names {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: (source as NSString).appendingPathComponent(name)))
            try await write(bytes, to: (folder as NSString).appendingPathComponent(name), pieces: 2, pause: pause)
        }
    }

    static func rename(_ from: String, _ to: String) throws {
        guard Foundation.rename(from, to) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: to])
        }
    }
}

/// Safetensors bytes taken apart and put back together (to make files whose header lies).
enum SafetensorsBytes {
    static func header(of bytes: Data) throws -> (json: [String: Any], data: Data) {
        let length = Int(bytes.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * $1.offset) })
        let json = try #require(try JSONSerialization.jsonObject(with: bytes[8..<(8 + length)]) as? [String: Any])
        return (json, bytes[(8 + length)...])
    }

    static func assemble(_ json: [String: Any], data: Data) throws -> Data {
        let header = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
        var length = UInt64(header.count).littleEndian
        var out = Data(bytes: &length, count: 8)
        out.append(header)
        out.append(data)
        return out
    }
}

/// Runs a daemon in this process until `stop()`.
final class RunningDaemon: @unchecked Sendable {
    let daemon: Daemon
    let task: Task<Void, Error>

    init(_ configuration: DaemonConfiguration, store: any ResultStore, logger: Logger = Logger.quiet) {
        daemon = Daemon(configuration: configuration, store: store, logger: logger)
        let daemon = daemon
        task = Task { try await daemon.run() }
    }

    func stop() async throws {
        daemon.requestStop()
        try await task.value
    }
}

extension Logger {
    /// Warnings and worse, on stderr: what a test run should show.
    static var quiet: Logger {
        var logger = Logger(label: "test") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .warning
        return logger
    }

    /// Everything, into `lines`.
    static func collecting(_ lines: LockedLines) -> Logger {
        var logger = Logger(label: "test") { label in
            var handler = JSONLogHandler(label: label) { lines.append($0) }
            handler.logLevel = .trace
            return handler
        }
        logger.logLevel = .trace
        return logger
    }
}

final class LockedLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) {
        lock.lock()
        lines.append(line)
        lock.unlock()
    }
    var all: [String] {
        lock.lock()
        defer { lock.unlock() }
        return lines
    }
}

/// Polls `condition` every 50 ms for at most `seconds`.
func waitUntil(
    _ seconds: Double, _ what: String, sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () async throws -> Bool
) async throws {
    if try await poll(for: seconds, condition) { return }
    Issue.record("timed out after \(seconds) s waiting until \(what)", sourceLocation: sourceLocation)
    throw CancellationError()
}

/// Settings for quick evaluations on a tiny span.
func quickSettings(data: String, lengths: String = "1x,2x", budget: Int = 256, dtype: TokenDType = .uint16) throws
    -> EvaluationSettings
{
    EvaluationSettings(
        data: DataReference(path: data, dtype: dtype), lengths: try LengthGrid(parsing: lengths), budget: budget,
        resamples: 50)
}

/// A raw uint16 token file of `count` tokens below `vocabulary` (the fixtures' vocabulary is 96).
func randomTokens(_ path: String, count: Int = 8192, vocabulary: UInt32 = 96) throws {
    var random = TestRandom(seed: 7)
    let tokens = random.tokens(count, below: vocabulary).map { UInt16($0).littleEndian }
    try tokens.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: path)) }
}

import TokenData
