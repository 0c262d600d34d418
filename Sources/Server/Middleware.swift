import Foundation
import Hummingbird
import Logging
import Reports
import ResultStore

/// A failure the API reports with a status: thrown by handlers, turned into a JSON body at the edge.
struct APIError: Error, Sendable {
    var status: HTTPResponse.Status
    var message: String

    static func notFound(_ message: String) -> APIError { APIError(status: .notFound, message: message) }
    static func badRequest(_ message: String) -> APIError { APIError(status: .badRequest, message: message) }
}

/// Every failure as `{"error": {"status": N, "message": "…"}}`: API errors with their status, unknown routes 404,
/// a store that cannot be read 503, anything else 500 (logged). Domain errors meet HTTP only here.
struct JSONErrorMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            if error.status.code >= 500 {
                context.logger.error(
                    "request failed", metadata: ["error": "\(error.message)", "path": "\(request.uri.path)"])
            }
            return Self.response(error.status, error.message)
        } catch let error as HTTPError {
            let message =
                error.status == .notFound
                ? "no route \(request.method) \(request.uri.path); see /openapi.yaml"
                : (error.body ?? "\(error.status)")
            return Self.response(error.status, message)
        } catch let error as StoreError {
            if case .missing(let what) = error { return Self.response(.notFound, what) }
            context.logger.error("store error", metadata: ["error": "\(error)"])
            return Self.response(.serviceUnavailable, error.description)
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            return Self.response(.internalServerError, "internal error: \(error)")
        }
    }

    static func response(_ status: HTTPResponse.Status, _ message: String) -> Response {
        struct Body: Encodable {
            struct Detail: Encodable {
                var status: Int
                var message: String
            }
            var error: Detail
        }
        let body = Body(error: .init(status: status.code, message: message))
        do {
            return try JSONBody.response(body, status: status)
        } catch {
            // Two plain fields cannot fail to encode; if they ever did, the status still reaches the client.
            return JSONBody.text(
                #"{"error":{"status":\#(status.code),"message":"the error could not be encoded"}}"# + "\n",
                type: "application/json; charset=utf-8", status: status)
        }
    }
}

/// Refuses bodies over the limit (by `Content-Length`, and while reading a chunked one) with 413.
struct BodyLimitMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext

    let limit: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            throw APIError(status: .contentTooLarge, message: "request body of \(length) bytes exceeds \(limit)")
        }
        return try await next(request, context)
    }
}

/// With a token configured, every request but `/healthz` must carry it: `Authorization: Bearer T`, or the
/// `extrapolate_token` cookie set by visiting `/?token=T` (the page). Mutating requests need the header, and are
/// refused outright when no token is configured.
struct TokenMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext

    let token: String?
    static var cookie: String { "extrapolate_token" }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let mutating = request.method != .get && request.method != .head
        let header = request.headers[.authorization].flatMap { value -> String? in
            value.hasPrefix("Bearer ") ? String(value.dropFirst(7)) : nil
        }
        guard let token, !token.isEmpty else {
            if mutating {
                throw APIError(
                    status: .forbidden,
                    message: "\(request.uri.path) changes the daemon; start serve with --token T and send "
                        + "'Authorization: Bearer T'")
            }
            return try await next(request, context)
        }
        if request.uri.path == "/healthz" { return try await next(request, context) }
        if Self.equal(header, token) { return try await next(request, context) }
        if !mutating {
            if Self.equal(request.cookies[Self.cookie]?.value, token) { return try await next(request, context) }
            if request.uri.path == "/", Self.equal(request.uri.queryParameters.get("token"), token) {
                // The page: remember the token in a cookie and drop it from the address bar.
                var response = Response(status: .seeOther, headers: [.location: "/"])
                response.setCookie(
                    Cookie(name: Self.cookie, value: token, path: "/", httpOnly: true, sameSite: .strict))
                return response
            }
        }
        throw APIError(
            status: .unauthorized,
            message: mutating
                ? "send the token as 'Authorization: Bearer T'"
                : "this server needs its token: 'Authorization: Bearer T', or open /?token=T in a browser")
    }

    /// Compares in time independent of where the strings differ.
    static func equal(_ given: String?, _ token: String) -> Bool {
        guard let given else { return false }
        let a = Array(given.utf8), b = Array(token.utf8)
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<min(a.count, b.count) { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}

/// JSON and text responses.
enum JSONBody {
    /// `value` as JSON, encoded as every report is (`ReportJSON`: sorted keys, ISO 8601 dates, "inf" and "nan").
    /// - Throws: `APIError` (500) naming the value's type when it cannot be encoded: a body that failed must never
    ///   reach the client as a successful `{}` (`JSONErrorMiddleware` answers with the error and logs it).
    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws(APIError) -> Response {
        text(try encoded(value), type: json, status: status)
    }

    static let json = "application/json; charset=utf-8"

    /// `value` as the JSON text of an answer (with its final newline).
    /// - Throws: `APIError` (500) as `response`.
    static func encoded(_ value: some Encodable) throws(APIError) -> String {
        do {
            return try ReportJSON.encode(value) + "\n"
        } catch {
            throw APIError(
                status: .internalServerError, message: "cannot encode the \(type(of: value)) answer as JSON: \(error)")
        }
    }

    static func text(_ text: String, type: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: type, .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func bytes(_ bytes: [UInt8], type: String) -> Response {
        Response(
            status: .ok, headers: [.contentType: type, .cacheControl: "no-cache"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

extension Parameters {
    /// The path parameter `name`, percent-decoded (`my%20run` is the run `my run`): browsers and the page encode
    /// run names with spaces, `#`, `?` or non-ASCII letters.
    /// - Throws: `HTTPError(.badRequest)` when the route has no such parameter or its encoding is not UTF-8.
    func decoded(_ name: String) throws -> String {
        let raw = try require(name)
        guard let decoded = raw.removingPercentEncoding else {
            throw APIError.badRequest("'\(raw)' is not a percent-encoded UTF-8 name")
        }
        return decoded
    }
}
