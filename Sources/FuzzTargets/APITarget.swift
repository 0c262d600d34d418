import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOEmbedded
import ResultStore
import Server

/// The HTTP API's request decoding, in this process without a socket: each input is read as an HTTP/1.1 request
/// (request line, header lines, a blank line, the body) and handed to the server's router — the same middlewares,
/// routes, query-parameter and JSON-body decoding the daemon serves — over the in-memory store `HTTPFuzzServer`
/// seeds. Thousands of requests a second where a socket allows hundreds; the HTTP parser itself (SwiftNIO's) is
/// the `http` target's.
///
/// Inputs that are not a request line and headers HTTP could carry (a method that is not a token, a header name with
/// a space) are dropped here, as the parser would refuse them before any route saw them.
public final class APIFuzzResponder: @unchecked Sendable {
    private let responder: Router<BasicRequestContext>.Responder
    private let logger: Logger
    /// What a request context names as its connection: one for the process (an `EmbeddedChannel` and its pipeline
    /// hold each other until it is closed, so one per request would leak).
    private let channel = EmbeddedChannel()

    /// Seeds the store and builds the router (once per process).
    public static func start() async throws -> APIFuzzResponder {
        let store = MemoryStore()
        try await HTTPFuzzServer.seed(store)
        let state = ServerState(
            store: store, daemon: nil, metrics: ServerMetrics(),
            configuration: ServerConfiguration(port: 0, token: HTTPFuzzServer.token))
        var logger = Logger(label: "fuzz")
        logger.logLevel = .critical
        return APIFuzzResponder(responder: buildRouter(state: state).buildResponder(), logger: logger)
    }

    private init(responder: Router<BasicRequestContext>.Responder, logger: Logger) {
        self.responder = responder
        self.logger = logger
    }

    /// The request `bytes` describe, or nil when they describe none.
    public static func request(_ bytes: [UInt8]) -> Request? {
        let separator = Array("\r\n\r\n".utf8)
        var headEnd = bytes.count
        var bodyStart = bytes.count
        if let found = bytes.firstRange(of: separator) {
            headEnd = found.lowerBound
            bodyStart = found.upperBound
        }
        let head = String(decoding: bytes[..<headEnd], as: UTF8.self)
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false).makeIterator()
        guard let requestLine = lines.next() else { return nil }
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, let method = HTTPRequest.Method(String(parts[0])), parts[1].first == "/" else {
            return nil
        }
        var fields = HTTPFields()
        while let line = lines.next() {
            guard let colon = line.firstIndex(of: ":"), let name = HTTPField.Name(String(line[..<colon])) else {
                return nil
            }
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            guard HTTPField.isValidValue(value) else { return nil }
            fields.append(HTTPField(name: name, value: value))
        }
        var body = ByteBuffer()
        body.writeBytes(bytes[bodyStart...])
        return Request(
            head: HTTPRequest(
                method: method, scheme: "http", authority: "localhost", path: String(parts[1]), headerFields: fields),
            body: RequestBody(buffer: body))
    }

    /// Answers `bytes`: the status and the body's size, or nil when the bytes are not a request.
    public func respond(_ bytes: [UInt8]) async -> (status: Int, bytes: Int)? {
        guard let request = Self.request(bytes) else { return nil }
        let context = BasicRequestContext(source: .init(channel: channel, logger: logger))
        let response: Response
        do {
            response = try await responder.respond(to: request, context: context)
        } catch let error as any HTTPResponseError {
            // What Hummingbird's server does with an error no middleware turned into a response (a 404, a 405).
            return (Int(error.status.code), 0)
        } catch {
            // The server answers any other error with a 500; the fuzz harness counts it as answered.
            return (500, 0)
        }
        let counted = Counted()
        do {
            try await response.body.write(CountingWriter(counted: counted))
        } catch {
            // A body that fails half-way is a closed connection for a client: answered, with what was written.
            return (Int(response.status.code), counted.bytes)
        }
        return (Int(response.status.code), counted.bytes)
    }

    /// The bytes of a response body, counted by `CountingWriter` (the writer is consumed by the body).
    final class Counted: @unchecked Sendable {
        var bytes = 0
    }

    struct CountingWriter: ResponseBodyWriter {
        let counted: Counted
        mutating func write(_ buffer: ByteBuffer) async throws { counted.bytes += buffer.readableBytes }
        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }
}
