import Foundation
import ResultStore
import TestSupport
import Testing

/// `--store` as people write it: a path, `sqlite:PATH`, or a PostgreSQL URL whose password may come from three places.
@Suite struct StoreAddresses {
    @Test("Paths and sqlite: are SQLite; postgres:// and postgresql:// are PostgreSQL with every part read")
    func parsing() throws {
        #expect(try StoreAddress(parsing: "/var/lib/x.sqlite", environment: [:]) == .sqlite(path: "/var/lib/x.sqlite"))
        #expect(try StoreAddress(parsing: "sqlite:runs.sqlite", environment: [:]) == .sqlite(path: "runs.sqlite"))
        guard
            case .postgres(let address) = try StoreAddress(
                parsing: "postgresql://lab:s%3Acret@db.lab:6432/results?sslmode=require", environment: [:])
        else {
            Issue.record("not read as PostgreSQL")
            return
        }
        #expect(address.user == "lab" && address.password == "s:cret" && address.host == "db.lab")
        #expect(address.port == 6432 && address.database == "results" && address.tls == .require)
        #expect(address.description == "postgres://lab@db.lab:6432/results", "never the password")
        let socket = try PostgresAddress(url: "postgres://lab@localhost/results?host=/run/postgresql", environment: [:])
        #expect(socket.socketFolder == "/run/postgresql" && socket.port == 5432 && socket.tls == .prefer)
        let defaults = try PostgresAddress(url: "postgres://db.lab", environment: ["USER": "me"])
        #expect(defaults.user == "me" && defaults.database == "me" && defaults.port == 5432)
    }

    @Test("A URL that cannot work is refused in one line that hides its password")
    func refusals() {
        #expect {
            _ = try PostgresAddress(url: "postgres://lab:secret@db/x?sslmode=sometimes", environment: [:])
        } throws: { error in
            let text = "\(error)"
            return text.contains("sslmode 'sometimes'") && text.contains("verify-full") && !text.contains("secret")
                && !text.contains("\n")
        }
        #expect(throws: StoreError.self) { _ = try PostgresAddress(url: "postgres://", environment: [:]) }
    }

    @Test("The password: the URL's, else PGPASSWORD, else the first matching ~/.pgpass line")
    func passwords() throws {
        let scratch = try ScratchFolder("pgpass")
        defer { scratch.remove() }
        let file = scratch.path("pgpass")
        try """
        # host:port:database:user:password
        other.lab:5432:*:lab:wrong
        db.lab:5432:results:lab:from\\:file
        *:*:*:*:fallback
        """.write(toFile: file, atomically: true, encoding: .utf8)
        let url = "postgres://lab@db.lab/results"
        #expect(try PostgresAddress(url: url, environment: ["PGPASSFILE": file]).password == "from:file")
        #expect(
            try PostgresAddress(url: url, environment: ["PGPASSFILE": file, "PGPASSWORD": "env"]).password == "env")
        #expect(
            try PostgresAddress(url: "postgres://lab:url@db.lab/results", environment: ["PGPASSWORD": "env"]).password
                == "url")
        #expect(
            try PostgresAddress(url: "postgres://lab@elsewhere/x", environment: ["PGPASSFILE": file]).password
                == "fallback")
        #expect(try PostgresAddress(url: url, environment: ["PGPASSFILE": "/nonexistent"]).password == nil)
    }
}
