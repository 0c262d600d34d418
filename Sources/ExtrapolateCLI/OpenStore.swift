import Logging
import ResultStore
import Service

/// The store a daemon or worker writes, opened as its configuration says; a store that cannot be opened (another
/// daemon holds a SQLite file, a PostgreSQL server that stays unreachable, a schema too new) is one line.
func openStore(_ configuration: DaemonConfiguration, logger: Logger) async throws -> any ResultStore {
    do {
        return try await configuration.storeAddress.open(
            writing: true, logger: logger, connections: 4, waitSeconds: 60)
    } catch {
        throw CommandError(error.description)
    }
}
