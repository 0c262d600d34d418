import ArgumentParser
import Foundation
import ResultStore

extension Extrapolate {
    /// `extrapolate prune`.
    public struct Prune: AsyncParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Remove a run from a result store: its checkpoint versions, jobs and results.",
            discussion: """
                Shows what would be removed and asks you to type the run's name (or pass --yes). Results another \
                run's checkpoints share (a copied checkpoint) stay. The daemon must be stopped: it holds the store. \
                A folder the daemon still watches is found and evaluated again at its next start; remove it from \
                the command line or the configuration first. To hide a run from the page without deleting anything, \
                untick it in the page's run table.
                """
        )

        @OptionGroup var store: StoreOption
        @Option(name: .customLong("run"), help: "The run to remove (its folder's name, as `status` lists it).")
        var runName: String
        @Flag(help: "Remove without asking.") var yes = false

        public init() {}

        public func run() async throws {
            let path = store.store ?? StoreLocation.defaultPath()
            if case .postgres = try StoreAddress.validated(path) {
                throw CommandError(
                    "prune works on a SQLite store; on PostgreSQL delete the run's rows in SQL with every process "
                        + "stopped (Docs/fleet.md, \"Removing a run\")")
            }
            let opened: SQLiteStore
            do { opened = try SQLiteStore(writingTo: path) } catch { throw CommandError(error.description) }
            let count: PruneCount
            do { count = try opened.prune(run: runName, dryRun: true) } catch {
                let runs = try await opened.runs().map(\.name)
                throw CommandError(
                    "no run named '\(runName)' in \(path); runs: "
                        + (runs.isEmpty ? "none" : runs.joined(separator: ", ")))
            }
            let summary =
                "\(count.versions) checkpoint version(s), \(count.jobs) job(s) and \(count.results) result(s) of run "
                + "'\(runName)' in \(path)"
            if !yes {
                guard isatty(STDIN_FILENO) == 1 else {
                    throw CommandError("would remove \(summary); pass --yes to remove them without a terminal")
                }
                print("This removes \(summary). Type the run's name to confirm: ", terminator: "")
                guard readLine() == runName else { throw CommandError("not confirmed: nothing was removed") }
            }
            _ = try opened.prune(run: runName)
            print("removed \(summary)")
        }
    }
}
