import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A hook command (the nightly report's `notify-command`) run by `/bin/sh -c` in a process group of its own, waited
/// for without blocking a thread, and stopped — with everything it started — past a time limit or at shutdown.
///
/// Foundation's `Process.waitUntilExit()` blocks the calling thread for as long as the command runs: a hook that
/// hangs (a mail server that never answers) would hold a thread of the daemon's pool and its shutdown for ever.
public struct ShellCommand: Sendable {
    /// How a command ended.
    public enum Outcome: Sendable, Equatable, CustomStringConvertible {
        /// It exited with this status.
        case exited(Int32)
        /// A signal it did not send itself ended it.
        case signalled(Int32)
        /// It ran past the time limit: its process group was sent SIGTERM, then SIGKILL 2 s later.
        case timedOut(seconds: Double)
        /// The caller asked to stop (shutdown) while it ran: its group was stopped as for a timeout.
        case interrupted

        public var description: String {
            switch self {
            case .exited(let status): "exited with status \(status)"
            case .signalled(let signal): "ended by signal \(signal)"
            case .timedOut(let seconds): "still running after \(Self.seconds(seconds)): stopped"
            case .interrupted: "stopped at shutdown"
            }
        }

        static func seconds(_ value: Double) -> String {
            value == value.rounded() ? "\(Int(value)) s" : String(format: "%.1f s", value)
        }
    }

    public var command: String
    /// `$0`, `$1`, … of the command.
    public var arguments: [String]
    /// Variables added to (or replacing) the daemon's environment.
    public var environment: [String: String]
    /// How long it may run.
    public var timeout: Double

    public init(_ command: String, arguments: [String] = [], environment: [String: String] = [:], timeout: Double) {
        self.command = command
        self.arguments = arguments
        self.environment = environment
        self.timeout = timeout
    }

    /// Runs the command to its end, its time limit, or until `stop()` answers true (checked every 50 ms).
    /// - Throws: `POSIXError` when `/bin/sh` cannot be started.
    public func run(stop: @Sendable () -> Bool = { false }) async throws -> Outcome {
        let pid = try spawn()
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let ended = Self.reap(pid, blocking: false) { return ended }
            if stop() {
                await Self.stopGroup(pid)
                return .interrupted
            }
            if Date() >= deadline {
                await Self.stopGroup(pid)
                return .timedOut(seconds: timeout)
            }
            // A cancelled sleep returns at once; the loop then sees stop() or the deadline, or reaps the command.
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    private func spawn() throws -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group (pgid = its pid), so that stopping it reaches what the shell started.
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        let argv = (["/bin/sh", "-c", command] + arguments).map { strdup($0) } + [nil]
        let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, "/bin/sh", nil, &attributes, argv, envp)
        guard status == 0 else { throw POSIXError(POSIXErrorCode(rawValue: status) ?? .EIO) }
        return pid
    }

    /// The outcome when `pid` has ended (reaping it), nil while it runs.
    private static func reap(_ pid: pid_t, blocking: Bool) -> Outcome? {
        var status: Int32 = 0
        let result = waitpid(pid, &status, blocking ? 0 : WNOHANG)
        if result == 0 { return nil }
        // -1: already reaped or not our child (ECHILD); nothing is left to wait for.
        if result < 0 { return .exited(-1) }
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
    }

    /// SIGTERM to the whole group, SIGKILL 2 s later if the shell has not ended, then reaps it.
    private static func stopGroup(_ pid: pid_t) async {
        kill(-pid, SIGTERM)
        let end = Date().addingTimeInterval(2)
        while Date() < end {
            if reap(pid, blocking: false) != nil {
                // The shell is gone; what it started may not be.
                kill(-pid, SIGKILL)
                return
            }
            try? await Task.sleep(for: .milliseconds(50))  // cancelled: the loop ends at `end` all the same
        }
        kill(-pid, SIGKILL)
        _ = reap(pid, blocking: true)
    }
}
