import Foundation
import Reports

/// How the HTTP server listens and whom it answers.
public struct ServerConfiguration: Sendable, Hashable {
    /// The address to listen on (default loopback) and port (0: any free port, for tests).
    public var host: String
    public var port: Int
    /// When set, every request but `/healthz` must carry it (`Authorization: Bearer T`, or the cookie the page sets
    /// after `/?token=T`); the mutating routes need it in the header and are refused when no token is configured.
    public var token: String?
    /// Largest request body accepted, in bytes.
    public var maximumBodyBytes: Int
    /// When `/api/alerts`, the page and the metrics raise an alert.
    public var thresholds: AlertThresholds
    /// Seconds the page waits between checks for new results.
    public var refreshSeconds: Double
    /// Seconds a connection may send nothing (mid-request or between requests) before it is closed.
    public var idleSeconds: Int = 30

    public init(
        host: String = "127.0.0.1", port: Int = 8080, token: String? = nil, maximumBodyBytes: Int = 64 << 10,
        thresholds: AlertThresholds = AlertThresholds(), refreshSeconds: Double = 2
    ) {
        self.host = host
        self.port = port
        self.token = token
        self.maximumBodyBytes = maximumBodyBytes
        self.thresholds = thresholds
        self.refreshSeconds = refreshSeconds
    }

    /// `HOST:PORT`, `:PORT`, `PORT` or `[v6]:PORT`; `nil` when it is none of them.
    public static func parseListen(_ text: String) -> (host: String, port: Int)? {
        var host = "127.0.0.1"
        var portText = text
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                return nil
            }
            host = String(text[text.index(after: text.startIndex)..<close])
            portText = String(text[text.index(close, offsetBy: 2)...])
        } else if let colon = text.lastIndex(of: ":") {
            if colon != text.startIndex { host = String(text[..<colon]) }
            portText = String(text[text.index(after: colon)...])
        }
        guard let port = Int(portText), (0...65535).contains(port), !host.isEmpty else { return nil }
        return (host, port)
    }

    /// Whether `host` is a loopback address (the only kind served without a token).
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// Why this configuration must not start, or `nil`: a non-loopback address without a token.
    public var refusal: String? {
        if !Self.isLoopback(host), (token ?? "").isEmpty {
            return "refusing to listen on \(host):\(port) without a token: anyone who can reach it could read your "
                + "results. Give --token T (or EXTRAPOLATE_TOKEN), or listen on 127.0.0.1"
        }
        if let token, token.count < 8 { return "the token must be at least 8 characters" }
        return nil
    }
}

/// Listening sockets probed before the server starts, so a busy port is one clear line, not a stack trace.
public enum PortProbe {
    /// `nil` when `host:port` can be bound now, else the reason (`in use`, `cannot assign`…).
    public static func problem(host: String, port: Int) -> String? {
        guard port != 0 else { return nil }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE
        var info: UnsafeMutablePointer<addrinfo>?
        let looked = getaddrinfo(host, String(port), &hints, &info)
        guard looked == 0, let first = info else {
            return "cannot resolve \(host): \(String(cString: gai_strerror(looked)))"
        }
        defer { freeaddrinfo(info) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard fd >= 0 else { return "cannot open a socket: \(String(cString: strerror(errno)))" }
        defer { close(fd) }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        if bind(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) != 0 || listen(fd, 1) != 0 {
            let code = errno
            if code == EADDRINUSE { return "\(host):\(port) is already in use (another extrapolate serve?)" }
            return "cannot listen on \(host):\(port): \(String(cString: strerror(code)))"
        }
        return nil
    }
}
