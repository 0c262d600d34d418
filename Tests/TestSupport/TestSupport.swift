import Evaluation
import Kernels
import ResultStore
import Foundation
import Testing

/// Paths of everything the tests read from the repository.
public enum Repository {
    /// The repository's root folder.
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    /// `Tests/Fixtures`: configs, reference models and values written by the committed generator scripts.
    public static let fixtures = root.appendingPathComponent("Tests/Fixtures")
    /// `Tests/Fixtures/models`: one folder per reference model.
    public static let models = fixtures.appendingPathComponent("models")
    /// The bundled KJV validation split (`Datasets/kjv`).
    public static let kjvValidation = root.appendingPathComponent("Datasets/kjv/valid.tokens.zst").path

    /// The folder of reference model `name`.
    public static func model(_ name: String) -> String { models.appendingPathComponent(name).path }

    /// The committed demo checkpoint of `method` (`sinusoidal`, `rotary`, `t5`, `alibi`, `nope`) at `step`.
    public static func demo(_ method: String, step: Int = 2000) -> String {
        root.appendingPathComponent("Datasets/demo/\(method)/step-\(step).safetensors").path
    }
}

/// A scratch folder under the system's temporary folder, removed by `remove()`.
public struct ScratchFolder {
    public let url: URL

    /// A new, empty folder named after `label`.
    public init(_ label: String = "test") throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("extrapolate-\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    /// The path of `name` inside the folder.
    public func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    /// Deletes the folder and everything in it.
    public func remove() { try? FileManager.default.removeItem(at: url) }

    /// Copies of the demo runs' checkpoints at `steps` into `runs/METHOD/step-N.safetensors`; returns `runs`.
    public func demoRuns(methods: [String] = ["alibi"], steps: [Int] = [500, 1000]) throws -> String {
        for method in methods {
            for step in steps {
                let target = path("runs/\(method)/step-\(step).safetensors")
                try FileManager.default.createDirectory(
                    atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try FileManager.default.copyItem(atPath: Repository.demo(method, step: step), toPath: target)
            }
        }
        return path("runs")
    }
}

/// Expects two sequences to agree within `tolerance` (relative to magnitude when `relative`), printing the
/// largest difference and where it is when they do not.
public func expectClose(
    _ actual: [Double], _ expected: [Double], tolerance: Double, relative: Bool = false,
    _ comment: String = "", sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(
        actual.count == expected.count, "\(comment): \(actual.count) values, expected \(expected.count)",
        sourceLocation: sourceLocation)
    var worst = (difference: 0.0, index: -1)
    for (index, (a, e)) in zip(actual, expected).enumerated() {
        let difference = relative ? abs(a - e) / max(abs(e), 1e-300) : abs(a - e)
        if difference > worst.difference || difference.isNaN { worst = (difference, index) }
    }
    #expect(
        worst.difference <= tolerance,
        "\(comment): max |Δ| \(worst.difference) at index \(worst.index) exceeds \(tolerance)",
        sourceLocation: sourceLocation)
}

/// Reads a JSON fixture under `Tests/Fixtures`.
public func loadJSON<T: Decodable>(_ type: T.Type, _ relativePath: String) throws -> T {
    try JSONDecoder().decode(T.self, from: Data(contentsOf: Repository.fixtures.appendingPathComponent(relativePath)))
}

/// The one seeded generator every random test draws from: the library's own SplitMix64 (`SeededGenerator`, which
/// the bootstrap uses), so a failure reproduces from its seed.
public typealias TestRandom = SeededGenerator

extension SeededGenerator {
    /// `count` values in `0..<limit`.
    public mutating func tokens(_ count: Int, below limit: UInt32) -> [UInt32] {
        (0..<count).map { _ in UInt32(truncatingIfNeeded: next() % UInt64(limit)) }
    }

    /// `count` floats uniform in `range`.
    public mutating func floats(_ count: Int, in range: ClosedRange<Float>) -> [Float] {
        (0..<count).map { _ in Float.random(in: range, using: &self) }
    }
}

/// The `extrapolate` executable built beside the tests.
public enum Executable {
    public static var path: String? {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(
                "extrapolate"
            )
            .path,
            Repository.root.appendingPathComponent(".build/debug/extrapolate").path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// A started process running `extrapolate ARGUMENTS` (after `prefix`, a command that runs it, if any), or
    /// `tool` instead when given; its output goes to files.
    public static func start(
        _ arguments: [String], prefix: [String] = [], tool: String? = nil, environment extra: [String: String] = [:],
        in folder: ScratchFolder
    ) throws -> Process {
        let binary = try #require(path, "the extrapolate executable is built with the tests")
        let command = tool.map { [$0] } ?? (prefix + [binary])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst()) + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["EXTRAPOLATE_KEEP_BLAS_CORETYPE"] = "1"  // no re-exec: the pid stays the one we signal
        environment.merge(extra) { _, new in new }
        environment.merge(extra) { _, new in new }
        process.environment = environment
        _ = FileManager.default.createFile(atPath: folder.path("stdout"), contents: nil)
        _ = FileManager.default.createFile(atPath: folder.path("stderr"), contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: folder.path("stdout"))
        process.standardError = FileHandle(forWritingAtPath: folder.path("stderr"))
        try process.run()
        return process
    }

    /// Runs to the end: (exit status, stdout, stderr).
    public static func run(
        _ arguments: [String], prefix: [String] = [], tool: String? = nil, environment: [String: String] = [:],
        in folder: ScratchFolder
    ) async throws -> (Int32, String, String) {
        let process = try start(arguments, prefix: prefix, tool: tool, environment: environment, in: folder)
        while process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        return (
            process.terminationStatus, try String(contentsOfFile: folder.path("stdout"), encoding: .utf8),
            try String(contentsOfFile: folder.path("stderr"), encoding: .utf8)
        )
    }
}

/// `Kernels.threads` is process-wide and every test target runs in one process, in parallel: a test that sets it,
/// or that compares two passes bit for bit (which the thread count's row split would change), holds this lock.
public enum KernelThreads {
    private static let lock = NSLock()

    /// Runs `body` with no other holder changing the thread count (set to `threads` when given, restored after).
    public static func exclusive<T>(threads: Int? = nil, _ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        let saved = Kernels.threads
        defer { Kernels.threads = saved }
        if let threads { Kernels.threads = threads }
        return try body()
    }
}

/// The PostgreSQL server the tests may use: `EXTRAPOLATE_TEST_POSTGRES` (a `postgres://` URL; `Scripts/test` starts
/// a throw-away cluster and sets it). Each test gets a database of its own, dropped afterwards.
public enum TestPostgres {
    public static let url = ProcessInfo.processInfo.environment["EXTRAPOLATE_TEST_POSTGRES"].flatMap {
        $0.isEmpty ? nil : $0
    }

    /// Why PostgreSQL tests do not run here, for their skip message.
    public static let absence =
        "EXTRAPOLATE_TEST_POSTGRES is not set: PostgreSQL tests are skipped (Scripts/test starts a throw-away "
        + "cluster and sets it; or give postgres://user@host:port/db)"

    /// A fresh database on the test server, as a URL; `drop(_:)` removes it.
    public static func database() async throws -> String {
        guard let url else { throw StoreError.cannotOpen(path: "EXTRAPOLATE_TEST_POSTGRES", reason: absence) }
        let admin = try PostgresAddress(url: url)
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        try await PostgresStore.administer(name, at: admin)
        var address = admin
        address.database = name
        return "postgres://\(address.user)@\(address.host):\(address.port)/\(name)?sslmode=\(address.tls.rawValue)"
    }

    /// Drops a database `database()` made.
    public static func drop(_ databaseURL: String) async {
        guard let url, let admin = try? PostgresAddress(url: url), let made = try? PostgresAddress(url: databaseURL)
        else { return }
        try? await PostgresStore.administer(made.database, drop: true, at: admin)
    }
}

/// Every thread's stack of a running process, from gdb when it is installed: what a test prints when a child
/// process hangs, so that the hang can be read from a CI log.
public enum ThreadStacks {
    public static func of(_ pid: Int32) -> String {
        guard let gdb = ["/usr/bin/gdb", "/usr/local/bin/gdb"].first(where: FileManager.default.isExecutableFile)
        else { return "(gdb is not installed)" }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        process.arguments = ["60", gdb, "-p", "\(pid)", "-batch", "-ex", "thread apply all bt 16"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return "(gdb did not start: \(error))" }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let lines = String(decoding: output, as: UTF8.self).split(separator: "\n")
        return lines.filter { $0.hasPrefix("Thread") || $0.hasPrefix("#") }.joined(separator: "\n")
    }
}

/// Runs blocking work (a socket exchange, a wait on another process) on a thread of its own and awaits it. The
/// tests share a concurrency pool of one thread per core with hundreds of others; a blocked pool thread starves
/// every task behind it, an in-process server's among them.
public func onOwnThread<T: Sendable>(stackSize: Int? = nil, _ body: @escaping @Sendable () throws -> T) async throws
    -> T
{
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        if let stackSize { thread.stackSize = stackSize }
        thread.start()
    }
}

/// Polls `condition` every `interval` until it holds or `seconds` pass, and once more after that: a test's task may
/// wait behind the other tests' work for longer than its deadline (two pool threads, hundreds of tests started at
/// once), and what it waited for has usually happened meanwhile. Returns whether the condition held.
public func poll(
    for seconds: Double, every interval: Duration = .milliseconds(50), _ condition: () async throws -> Bool
) async throws -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if try await condition() { return true }
        try await Task.sleep(for: interval)
    }
    return try await condition()
}
