import Evaluation
import Foundation
import Logging
import ResultStore
import Server
import ServiceLifecycle

/// The daemon's HTTP server, in this process on a loopback port, over an in-memory store holding two runs with
/// results: each fuzz input is sent as the raw bytes of a request (request line, headers, body), so the HTTP parser,
/// the router, every route's query and body decoding and the middlewares see it. The server must answer or close
/// the connection within `deadline` seconds; a request it never finishes is a finding (the process stops).
public final class HTTPFuzzServer: @unchecked Sendable {
    public static let token = "fuzz-token"
    /// Seconds a request may take before it counts as a hang.
    public static let deadline = 10.0

    public let port: Int
    private let task: Task<Void, any Error>

    /// Starts the server (seconds); call once per process.
    public static func start() async throws -> HTTPFuzzServer {
        let store = MemoryStore()
        try await seed(store)
        var logger = Logger(label: "fuzz")
        logger.logLevel = .critical
        let state = ServerState(
            store: store, daemon: nil, metrics: ServerMetrics(),
            configuration: ServerConfiguration(port: 0, token: token))
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let application = buildApplication(state: state, logger: logger) { continuation.yield($0) }
        let group = ServiceGroup(services: [application], logger: logger)
        let task = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw CancellationError() }
        return HTTPFuzzServer(port: port, task: task)
    }

    private init(port: Int, task: Task<Void, any Error>) {
        self.port = port
        self.task = task
    }

    /// Sends `bytes`, closes the sending side, and reads the answer to its end; the bytes read.
    /// - Parameter deadline: seconds the server may take (a test sharing the process with hundreds of others allows
    ///   more than the fuzzer's `deadline`: the server's tasks may wait behind theirs).
    /// - Returns: nil when the connection could not be made (the server is gone: a finding for the caller).
    public func exchange(_ bytes: [UInt8], deadline: Double = HTTPFuzzServer.deadline) -> [UInt8]? {
        // libFuzzer's own timers interrupt system calls now and then: a connect cut short (EINTR) is tried again
        // on a fresh socket rather than taken for a server that stopped answering.
        var attempts = 0
        var fd: Int32 = -1
        while fd < 0 {
            attempts += 1
            let candidate = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard candidate >= 0 else { return nil }
            if Self.connect(candidate, port: port) {
                fd = candidate
            } else {
                let error = errno
                close(candidate)
                guard error == EINTR, attempts < 5 else {
                    errno = error
                    return nil
                }
            }
        }
        defer { close(fd) }
        // Closed with a reset, not left in TIME_WAIT: at hundreds of connections a second the client's ports would
        // otherwise run out within a minute (the first campaign's "server stopped accepting" was that).
        var reset = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, socklen_t(MemoryLayout<linger>.size))
        var timeout = timeval(tv_sec: Int(deadline), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var sent = 0
        while sent < bytes.count {
            let count = bytes.withUnsafeBytes {
                send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL))
            }
            // The server may answer (400) and close before reading everything: that is an answer, not a failure.
            if count <= 0 { break }
            sent += count
        }
        shutdown(fd, Int32(SHUT_WR))
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        let start = Date()
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                answer += buffer[0..<count]
                continue
            }
            if count < 0, errno == EAGAIN || errno == EWOULDBLOCK, Date().timeIntervalSince(start) >= deadline {
                fatalError("the server neither answered nor closed within \(deadline) s")
            }
            if count < 0, errno == EINTR { continue }
            break
        }
        return answer
    }

    private static func connect(_ fd: Int32, port: Int) -> Bool {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    /// Two runs, two versions each, results at three lengths; one failed job.
    static func seed(_ store: MemoryStore) async throws {
        let settings = EvaluationSettings(data: DataReference(path: "/data/valid.tokens.zst", checksum: "xxh64:d"))
        for run in ["alibi", "rotary run"] {
            for step in [500, 1000] {
                let sighting = Sighting(
                    run: run, runFolder: "/runs/\(run)", path: "/runs/\(run)/step-\(step).safetensors", step: step,
                    scheme: "step-N.safetensors", size: 10, modified: 1, contentHash: "xxh64:\(run)\(step)",
                    state: .current)
                let version = try await store.register(sighting).record
                _ = try await store.ensureJob(checkpoint: version.id, settings: settings)
                guard let claimed = try await store.claim(worker: "fuzz", leaseSeconds: 600) else { continue }
                if step == 500, run == "alibi" {
                    try await store.finish(
                        claimed.lease, state: .failed, error: "injected", attempts: 1, retrySeconds: nil)
                    continue
                }
                for length in [64, 128, 256] {
                    let summary = CheckpointSummary(
                        checkpoint: sighting.path, name: .init(run: run, step: step, scheme: .stepFile),
                        architecture: "a", architectureHash: "sha256:a", trainedLength: 64)
                    var point = SweepPoint(
                        checkpoint: summary, series: "nonoverlapping", length: length, result: nil, interval: nil)
                    point.perplexity = 5 + Double(length) / 64
                    let key = ResultKey(
                        contentHash: sighting.contentHash, architectureHash: "sha256:a", scoringHash: "sha256:s",
                        series: "nonoverlapping", length: length, engineVersion: "engine-1")
                    try await store.record(
                        ResultRecord(key: key, outcome: .evaluated, point: point, started: Date(), finished: Date()),
                        lease: claimed.lease, planned: 3)
                }
                try await store.finish(claimed.lease, state: .done, error: nil, attempts: 1, retrySeconds: nil)
            }
        }
    }
}
