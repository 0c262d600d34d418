import Foundation
import Logging
import NIOSSL
import PostgresNIO

// Connecting to PostgreSQL: the client's and a single connection's configuration from an address, the probe that
// reports a server's own reason, errors as `StoreError`, and the pool replaced when it stops answering.
extension PostgresStore {
    /// The pool's configuration for `address` (TCP with its TLS mode, or a Unix socket).
    static func clientConfiguration(_ address: PostgresAddress) -> PostgresClient.Configuration {
        if let folder = address.socketFolder {
            return .init(
                unixSocketPath: "\(folder)/.s.PGSQL.\(address.port)", username: address.user,
                password: address.password, database: address.database)
        }
        let tls: PostgresClient.Configuration.TLS
        switch address.tls {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(tlsSettings(address.tls))
        case .require, .verifyFull: tls = .require(tlsSettings(address.tls))
        }
        return .init(
            host: address.host, port: address.port, username: address.user, password: address.password,
            database: address.database, tls: tls)
    }

    /// TLS as libpq's modes mean it: the certificate is checked only with `verify-full`.
    static func tlsSettings(_ mode: PostgresAddress.TLSMode) -> TLSConfiguration {
        var settings = TLSConfiguration.makeClientConfiguration()
        if mode != .verifyFull { settings.certificateVerification = .none }
        return settings
    }

    /// Opens one connection to `address` and closes it: the server's own reason when it refuses.
    static func probe(_ address: PostgresAddress) async throws {
        var quiet = Logger(label: "extrapolate.store")
        quiet.logLevel = .critical
        let configuration: PostgresConnection.Configuration
        if let folder = address.socketFolder {
            configuration = .init(
                unixSocketPath: "\(folder)/.s.PGSQL.\(address.port)", username: address.user,
                password: address.password, database: address.database)
        } else {
            var tls = PostgresConnection.Configuration.TLS.disable
            if address.tls != .disable {
                let context = try NIOSSLContext(configuration: tlsSettings(address.tls))
                tls = address.tls == .prefer ? .prefer(context) : .require(context)
            }
            configuration = .init(
                host: address.host, port: address.port, username: address.user, password: address.password,
                database: address.database, tls: tls)
        }
        do {
            let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: quiet)
            // Closing a connection already failed or no longer needed: nothing depends on it closing cleanly.
            try? await connection.close()
        } catch {
            throw storeError(error, path: address.description, operation: "connecting")
        }
    }

    /// Creates (or, with `drop`, drops) database `name` on the server of `address`, connecting to its database.
    /// For throw-away databases (tests, trials); a lab creates its database once with `createdb`.
    public static func administer(
        _ name: String, drop: Bool = false, at address: PostgresAddress, logger: Logger = Logger(label: "extrapolate")
    ) async throws(StoreError) {
        guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
            throw .failed(path: address.description, operation: "creating database \(name)", reason: "not a plain name")
        }
        var quiet = logger
        quiet.logLevel = .critical
        let client = PostgresClient(configuration: clientConfiguration(address), backgroundLogger: quiet)
        let running = Task { await client.run() }
        defer { running.cancel() }
        let sql = drop ? "DROP DATABASE IF EXISTS \(name) WITH (FORCE)" : "CREATE DATABASE \(name)"
        do { try await client.query(PostgresQuery(unsafeSQL: sql), logger: quiet) } catch {
            throw storeError(
                error, path: address.description, operation: drop ? "dropping \(name)" : "creating \(name)")
        }
    }

    /// `error` as a `StoreError`: a server that cannot be reached (down, restarting, a network drop) is
    /// `.unavailable`, for the caller to back off and retry.
    static func storeError(_ error: any Error, path: String, operation: String) -> StoreError {
        if let error = error as? StoreError {
            if case .corrupt(_, let what) = error { return .corrupt(path: path, what: what) }
            return error
        }
        if let transaction = error as? PostgresTransactionError {
            if let closure = transaction.closureError { return storeError(closure, path: path, operation: operation) }
            if let begin = transaction.beginError { return storeError(begin, path: path, operation: operation) }
            if let commit = transaction.commitError { return storeError(commit, path: path, operation: operation) }
        }
        if let error = error as? PSQLError {
            let state = error.serverInfo?[.sqlState] ?? ""
            let message = error.serverInfo?[.message] ?? error.underlying.map { "\($0)" } ?? "\(error.code)"
            // 08: connection exceptions; 57P01–57P03: the server shutting down or starting.
            let unreachable: [PSQLError.Code] = [
                .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed,
            ]
            if unreachable.contains(error.code) || state.hasPrefix("08") || state.hasPrefix("57P") {
                return .unavailable(path: path, reason: "\(message) (\(operation))")
            }
            if state == "28P01" || state == "28000" {
                return .cannotOpen(
                    path: path, reason: "\(message): check the user and password (PGPASSWORD, ~/.pgpass)")
            }
            if state == "3D000" {
                return .cannotOpen(path: path, reason: "\(message): create it first (createdb)")
            }
            return .failed(path: path, operation: operation, reason: message)
        }
        if error is CancellationError { return .unavailable(path: path, reason: "cancelled (\(operation))") }
        let text = "\(error)"
        if text.contains("connect") || text.contains("Connection") || text.contains("refused") {
            return .unavailable(path: path, reason: "\(text) (\(operation))")
        }
        return .failed(path: path, operation: operation, reason: text)
    }
}

/// A `PostgresClient` and the task running it, replaced as a whole when it stops answering.
final class ClientPool: @unchecked Sendable {
    private let configuration: PostgresClient.Configuration
    private let logger: Logger
    private let lock = NSLock()
    private var client: PostgresClient
    private var running: Task<Void, Never>

    init(configuration: PostgresClient.Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        (client, running) = Self.start(configuration, logger)
    }

    private static func start(
        _ configuration: PostgresClient.Configuration, _ logger: Logger
    ) -> (PostgresClient, Task<Void, Never>) {
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        return (client, Task { await client.run() })
    }

    var current: PostgresClient { lock.withLock { client } }

    /// Replaces `stale` (unless another caller already did) with a new client.
    func replace(_ stale: PostgresClient) {
        lock.withLock {
            guard client === stale else { return }
            running.cancel()
            (client, running) = Self.start(configuration, logger)
        }
    }

    func close() { lock.withLock { running.cancel() } }
}

/// Races an operation against a deadline without waiting for an operation that ignores cancellation.
enum Deadline {
    enum Outcome<T: Sendable>: Sendable {
        case success(T)
        case failure(any Error)
        case timedOut
    }

    /// `body`'s outcome, or `.timedOut` after `seconds` (the operation is then cancelled and left to end alone).
    static func race<T: Sendable>(
        seconds: Double, _ body: @escaping @Sendable () async throws -> T
    ) async -> Outcome<T> {
        let box = OnceContinuation<Outcome<T>>()
        return await withCheckedContinuation { continuation in
            box.set(continuation)
            let work = Task {
                do { box.resume(.success(try await body())) } catch { box.resume(.failure(error)) }
            }
            let timer = Task {
                try? await Task.sleep(for: .milliseconds(Int(seconds * 1000)))  // cancelled: the retry loop ends
                if !Task.isCancelled, box.resume(.timedOut) { work.cancel() }
            }
            box.onResume { timer.cancel() }
        }
    }
}

/// A continuation resumed once, by whichever side comes first.
final class OnceContinuation<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<T, Never>?
    private var resumed = false
    private var after: (() -> Void)?

    func set(_ continuation: CheckedContinuation<T, Never>) { lock.withLock { self.continuation = continuation } }

    /// Runs `body` once resumed (at once if already).
    func onResume(_ body: @escaping () -> Void) {
        let now = lock.withLock { () -> Bool in
            if resumed { return true }
            after = body
            return false
        }
        if now { body() }
    }

    /// Resumes with `value` if nobody did yet; returns whether this call did.
    @discardableResult func resume(_ value: T) -> Bool {
        let (continuation, after) = lock.withLock { () -> (CheckedContinuation<T, Never>?, (() -> Void)?) in
            guard !resumed else { return (nil, nil) }
            resumed = true
            defer { self.continuation = nil }
            return (self.continuation, self.after)
        }
        guard let continuation else { return false }
        continuation.resume(returning: value)
        after?()
        return true
    }
}
