import Foundation
import Logging

/// Where a store is, as `--store` (or `store =` in a configuration file) gives it: a path or `sqlite:PATH` for the
/// embedded SQLite store, `postgres://…` (or `postgresql://…`) for a PostgreSQL database shared by a fleet.
public enum StoreAddress: Sendable, Hashable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(PostgresAddress)

    /// Reads `text`. - Throws: `StoreError.cannotOpen` naming what is wrong with a PostgreSQL URL.
    public init(parsing text: String, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(StoreError)
    {
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            self = .postgres(try PostgresAddress(url: text, environment: environment))
        } else if text.hasPrefix("sqlite:") {
            self = .sqlite(path: String(text.dropFirst("sqlite:".count)))
        } else {
            self = .sqlite(path: text)
        }
    }

    /// The address for messages: a PostgreSQL URL without its password.
    public var description: String {
        switch self {
        case .sqlite(let path): path
        case .postgres(let address): address.description
        }
    }

    /// Whether it is a PostgreSQL database (a store many processes share).
    public var isShared: Bool {
        if case .postgres = self { return true }
        return false
    }
}

/// A PostgreSQL database to connect to: `postgres://user[:password]@host[:port]/database?sslmode=…`, libpq's
/// `host=/socket/folder` for a Unix socket. The password comes from the URL, else `PGPASSWORD`, else the first
/// matching line of `~/.pgpass` (or `PGPASSFILE`), as libpq reads them.
public struct PostgresAddress: Sendable, Hashable, CustomStringConvertible {
    /// How the connection uses TLS, as libpq's `sslmode` names it.
    public enum TLSMode: String, Sendable, Hashable, CaseIterable {
        /// Never (`disable`).
        case disable
        /// When the server offers it, without checking its certificate (`prefer`, libpq's default).
        case prefer
        /// Always, without checking the certificate (`require`).
        case require
        /// Always, checking the certificate and the host name against the system's trusted roots (`verify-full`).
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    /// A folder holding the server's Unix socket (`?host=/run/postgresql`), instead of TCP.
    public var socketFolder: String?
    public var user: String
    public var password: String?
    public var database: String
    public var tls: TLSMode

    public init(
        host: String = "localhost", port: Int = 5432, socketFolder: String? = nil, user: String,
        password: String? = nil, database: String, tls: TLSMode = .prefer
    ) {
        self.host = host
        self.port = port
        self.socketFolder = socketFolder
        self.user = user
        self.password = password
        self.database = database
        self.tls = tls
    }

    /// Reads a `postgres://` URL. - Throws: `StoreError.cannotOpen` naming the part that is wrong.
    public init(url text: String, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(StoreError)
    {
        func refuse(_ reason: String) -> StoreError {
            .cannotOpen(
                path: Self.redacted(text),
                reason: "\(reason); expected postgres://USER@HOST:PORT/DATABASE (see Docs/fleet.md)")
        }
        guard let components = URLComponents(string: text), let scheme = components.scheme,
            ["postgres", "postgresql"].contains(scheme)
        else { throw refuse("not a PostgreSQL URL") }
        let query = Dictionary(
            (components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { _, last in last })
        let user =
            components.user.flatMap { $0.removingPercentEncoding } ?? environment["PGUSER"] ?? environment["USER"]
        guard let user, !user.isEmpty else { throw refuse("no user name") }
        let database = String(components.path.drop { $0 == "/" }).removingPercentEncoding ?? ""
        let socket = query["host"].flatMap { $0.hasPrefix("/") ? $0 : nil }
        let host = components.host.flatMap { $0.isEmpty ? nil : $0 } ?? (socket == nil ? "localhost" : "localhost")
        let port = components.port ?? query["port"].flatMap(Int.init) ?? 5432
        let mode = query["sslmode"] ?? environment["PGSSLMODE"] ?? "prefer"
        guard let tls = TLSMode(rawValue: mode) else {
            throw refuse(
                "sslmode '\(mode)' is not one of \(TLSMode.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self.init(
            host: host, port: port, socketFolder: socket, user: user,
            password: components.password.flatMap { $0.removingPercentEncoding },
            database: database.isEmpty ? user : database,
            tls: tls)
        if password == nil {
            password = environment["PGPASSWORD"].flatMap { $0.isEmpty ? nil : $0 } ?? passwordFile(environment)
        }
    }

    /// The password of the first line of the password file matching this address (`*` matches anything).
    func passwordFile(_ environment: [String: String]) -> String? {
        let path =
            environment["PGPASSFILE"]
            ?? ((environment["HOME"] ?? NSHomeDirectory()) as NSString).appendingPathComponent(".pgpass")
        // As libpq: no readable password file means no password from it (the server then says what it needs).
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let wanted = [socketFolder == nil ? host : "localhost", String(port), database, user]
        for line in text.split(whereSeparator: \.isNewline) where !line.hasPrefix("#") {
            let fields = Self.pgpassFields(String(line))
            guard fields.count == 5 else { continue }
            if zip(fields.prefix(4), wanted).allSatisfy({ $0 == "*" || $0 == $1 }) { return fields[4] }
        }
        return nil
    }

    /// A `.pgpass` line's fields: split at `:`, with `\:` and `\\` escaped.
    static func pgpassFields(_ line: String) -> [String] {
        var fields: [String] = []
        var current = ""
        var escaped = false
        for character in line {
            if escaped {
                current.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == ":" {
                fields.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        fields.append(current)
        return fields
    }

    /// `postgres://user@host:port/database`, never the password.
    public var description: String {
        let place = socketFolder.map { "localhost/\(database)?host=\($0)" } ?? "\(host):\(port)/\(database)"
        return "postgres://\(user)@\(place)"
    }

    /// A URL with any password replaced by `***`, for messages about a URL that could not be read.
    static func redacted(_ text: String) -> String {
        guard var components = URLComponents(string: text), components.password != nil else { return text }
        components.password = "***"
        return components.string ?? text
    }
}

extension StoreAddress {
    /// Opens the store: for a daemon or worker (`writing`: SQLite takes its writer lock, PostgreSQL brings its schema
    /// up to date), or for a reader (`status`, `results`: SQLite read-only, PostgreSQL refusing a missing schema).
    /// - Parameters:
    ///   - connections: most PostgreSQL connections this process opens.
    ///   - waitSeconds: how long to keep trying a PostgreSQL server that cannot be reached yet.
    public func open(
        writing: Bool, logger: Logger = Logger(label: "extrapolate.store"), connections: Int = 4,
        waitSeconds: Double = 30
    ) async throws(StoreError) -> any ResultStore {
        switch self {
        case .sqlite(let path):
            return writing ? try SQLiteStore(writingTo: path) : try SQLiteStore(readingFrom: path)
        case .postgres(let address):
            return try await PostgresStore(
                address: address, writing: writing, connections: connections, waitSeconds: waitSeconds,
                logger: logger)
        }
    }

    /// The folder a process keeps its own files in beside this store (snapshots, reports): the SQLite file's folder,
    /// or for a PostgreSQL store the default state folder (`$XDG_STATE_HOME/extrapolate`).
    public var localFolder: String {
        switch self {
        case .sqlite(let path): return (path as NSString).deletingLastPathComponent
        case .postgres: return StoreLocation.stateFolder()
        }
    }
}

extension StoreAddress {
    /// `text` read as an address, or an error that says in one line what is wrong with it.
    public static func validated(_ text: String) throws -> StoreAddress {
        do { return try StoreAddress(parsing: text) } catch { throw StoreAddressError(message: error.description) }
    }
}

/// A `--store` that cannot be read, said in one line.
public struct StoreAddressError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
