import Evaluation
import Foundation
import Logging
import ResultStore
import Server
import Service
import ServiceLifecycle
import TestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

extension Logger {
    /// Warnings and worse, to standard error.
    static var quiet: Logger {
        var logger = Logger(label: "test") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .warning
        return logger
    }
}

/// A store with real results: the demo's ALiBi and rotary runs at steps 500 and 1000 evaluated at 1×, 2× and 4×,
/// and a run whose only checkpoint is not a checkpoint (a failure to list).
final class EvaluatedStore: @unchecked Sendable {
    let scratch: ScratchFolder
    let store: SQLiteStore
    let configuration: DaemonConfiguration

    /// - Parameter passkey: queue passkey jobs too (bytes, 2 trials, depths 0 and 100: cells at 4× only, the
    ///   shorter lengths cannot hold the prompt).
    init(_ label: String, methods: [String] = ["alibi", "rotary"], passkey: Bool = false) async throws {
        scratch = try ScratchFolder(label)
        let runs = try scratch.demoRuns(methods: methods)
        try FileManager.default.createDirectory(atPath: scratch.path("runs/broken"), withIntermediateDirectories: true)
        try Data(repeating: 0x41, count: 4096).write(
            to: URL(fileURLWithPath: scratch.path("runs/broken/step-1.safetensors")))
        let settings = EvaluationSettings(
            data: DataReference(path: Repository.kjvValidation, dtype: .uint16),
            lengths: try LengthGrid(parsing: "1x,2x,4x"),
            budget: 512, resamples: 50)
        var configuration = DaemonConfiguration(
            targets: [
                WatchTarget(
                    folder: runs, settings: settings, tasks: passkey ? [.perplexity, .passkey] : [.perplexity],
                    passkey: PasskeySettings(depths: [0, 100], trials: 2, bytes: true))
            ], store: scratch.path("results.sqlite"))
        configuration.quietSeconds = 0
        configuration.pollOnly = true
        self.configuration = configuration
        store = try SQLiteStore(writingTo: configuration.store)
        _ = try await Daemon(configuration: configuration, store: store, logger: .quiet).runOnce()
    }

    func remove() { scratch.remove() }
}

/// The application on a free loopback port, in this process, with a client for it.
final class TestServer: @unchecked Sendable {
    let state: ServerState
    let port: Int
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    /// Starts `state`'s application (and `daemon.run()` beside it when `runDaemon`).
    static func start(_ state: ServerState, runDaemon: Bool = false) async throws -> TestServer {
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let application = buildApplication(state: state, logger: .quiet) { port in continuation.yield(port) }
        var services: [any Service] = [application]
        if runDaemon, let daemon = state.daemon { services.append(daemon) }
        let group = ServiceGroup(services: services, logger: .quiet)
        let task = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw CancellationError() }
        if runDaemon, let daemon = state.daemon {
            _ = try await poll(for: 10, every: .milliseconds(20)) { daemon.isWatching }
        }
        return TestServer(state: state, port: port, group: group, task: task)
    }

    /// Serves `store` alone (no daemon) on a free port.
    static func start(serving store: SQLiteStore, token: String? = nil, metrics: ServerMetrics = ServerMetrics())
        async throws -> TestServer
    {
        try await start(
            ServerState(
                store: store, daemon: nil, metrics: metrics,
                configuration: ServerConfiguration(port: 0, token: token)))
    }

    private init(state: ServerState, port: Int, group: ServiceGroup, task: Task<Void, any Error>) {
        self.state = state
        self.port = port
        self.group = group
        self.task = task
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = await task.result
    }

    struct Reply {
        var status: Int
        var contentType: String
        var body: Data
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// `method path` with `headers` and `body`; redirects are not followed.
    func request(_ path: String, method: String = "GET", headers: [String: String] = [:], body: Data? = nil)
        async throws -> Reply
    {
        try await HTTP.request(port: port, path: path, method: method, headers: headers, body: body)
    }
}

/// A small HTTP/1.1 client over a socket: no redirects followed, no cookies kept, any status returned as it is.
enum HTTP {
    static func request(port: Int, path: String, method: String, headers: [String: String], body: Data?)
        async throws -> TestServer.Reply
    {
        // The blocking exchange runs on a thread of its own: on the concurrency pool (two threads on two cores) a
        // few waiting requests would occupy every thread, and an in-process server could never answer them.
        try await onOwnThread { try exchange(port: port, path: path, method: method, headers: headers, body: body) }
    }

    private static func exchange(port: Int, path: String, method: String, headers: [String: String], body: Data?)
        throws -> TestServer.Reply
    {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body {
            head += "Content-Length: \(body.count)\r\n"
        } else if method == "POST" {
            head += "Content-Length: 0\r\n"
        }
        head += "\r\n"
        var bytes = Data(head.utf8)
        if let body { bytes.append(body) }
        try bytes.withUnsafeBytes { raw in
            var sent = 0
            while sent < raw.count {
                let n = send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                if n <= 0 { throw POSIXError(.EPIPE) }
                sent += n
            }
        }
        var received = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            received.append(buffer, count: n)
        }
        guard let split = received.range(of: Data("\r\n\r\n".utf8)) else { throw POSIXError(.EBADMSG) }
        let lines = String(decoding: received[..<split.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        var fields: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var content = Data(received[split.upperBound...])
        if fields["transfer-encoding"]?.lowercased() == "chunked" { content = dechunk(content) }
        return TestServer.Reply(status: status, contentType: fields["content-type"] ?? "", body: content)
    }

    private static func dechunk(_ data: Data) -> Data {
        var out = Data()
        var rest = data[...]
        while let lineEnd = rest.range(of: Data("\r\n".utf8)) {
            let size = Int(String(decoding: rest[..<lineEnd.lowerBound], as: UTF8.self), radix: 16) ?? 0
            if size == 0 { break }
            let start = lineEnd.upperBound
            out.append(rest[start..<start + size])
            rest = rest[(start + size + 2)...]
        }
        return out
    }
}

/// Any JSON (or YAML) value.
indirect enum JSONValue: Decodable, Equatable {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    var string: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    var object: [String: JSONValue]? {
        if case .object(let object) = self { return object }
        return nil
    }

    var array: [JSONValue]? {
        if case .array(let items) = self { return items }
        return nil
    }

    var number: Double? {
        switch self {
        case .integer(let value): Double(value)
        case .number(let value): value
        default: nil
        }
    }

    static func parse(_ data: Data) throws -> JSONValue { try JSONDecoder().decode(JSONValue.self, from: data) }
}
