import Foundation
import Testing
import TestSupport

/// The README's set-up scripts: what they do when a package is missing and they may not install it, and that they
/// do nothing when everything is there. (Installing for real is what CI's fresh machines and Docs/setup.md's
/// fresh-root run exercise.)
@Suite(.serialized) struct SetupScriptTests {
    /// Runs `prerequisites build` from Scripts/prerequisites.sh as an unprivileged user without sudo, with a
    /// `dpkg-query` that reports `missing` as not installed.
    static func prerequisites(missing: [String], in scratch: ScratchFolder) async throws -> (Int32, String)? {
        let stubs = scratch.path("bin")
        try FileManager.default.createDirectory(atPath: stubs, withIntermediateDirectories: true)
        let stub = """
            #!/bin/sh
            # dpkg-query -W -f=${Status} PACKAGE: the package is the last argument
            for p in \(missing.joined(separator: " ")); do for a; do :; done; [ "$a" = "$p" ] && exit 1; done
            printf 'install ok installed'
            """
        try stub.write(toFile: stubs + "/dpkg-query", atomically: true, encoding: .utf8)
        chmod(stubs + "/dpkg-query", 0o755)
        chmod(scratch.url.path, 0o755)
        chmod(stubs, 0o755)
        // A copy the unprivileged user can read: the clone may sit in a folder only its owner can enter (mktemp -d).
        let script = scratch.path("prerequisites.sh")
        try FileManager.default.copyItem(
            atPath: Repository.root.appendingPathComponent("Scripts/prerequisites.sh").path, toPath: script)
        chmod(script, 0o644)
        var command = ["/bin/bash", "-c", "PATH=\(stubs):/bin; source '\(script)'; prerequisites build"]
        if getuid() == 0 {
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
                print("SetupScriptTests skipped: running as root needs setpriv (util-linux) to act as a user")
                return nil
            }
            command = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + command
        }
        let (status, _, errors) = try await Executable.run(Array(command.dropFirst()), tool: command[0], in: scratch)
        return (status, errors)
    }

    @Test("A missing package without root or sudo: one line naming it and the command to run, and status 1")
    func missingPackageSaysWhatToRun() async throws {
        let scratch = try ScratchFolder("setup")
        defer { scratch.remove() }
        guard let (status, errors) = try await Self.prerequisites(missing: ["libzstd-dev"], in: scratch) else { return }
        #expect(status == 1, "\(errors)")
        #expect(
            errors.contains(
                "Missing Debian packages: libzstd-dev. Run as root:  apt-get update && apt-get install -y "
                    + "--no-install-recommends libzstd-dev"), "\(errors)")
    }

    @Test("Nothing missing: nothing printed, nothing installed, status 0")
    func nothingMissingDoesNothing() async throws {
        let scratch = try ScratchFolder("setup")
        defer { scratch.remove() }
        guard let (status, errors) = try await Self.prerequisites(missing: [], in: scratch) else { return }
        #expect(status == 0 && errors.isEmpty, "\(errors)")
    }
}
