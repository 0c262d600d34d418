import ArgumentParser
import Foundation
import Testing
import TestSupport

@testable import ExtrapolateCLI

@Suite("Commands say what is wrong: runtime failures are one line with status 1, not usage errors")
struct CommandErrorTests {
    @Test("--version prints the release and the numerics' version")
    func version() throws {
        do {
            _ = try Extrapolate.parseAsRoot(["--version"])
            Issue.record("--version was not handled")
        } catch {
            let message = Extrapolate.fullMessage(for: error)
            #expect(message.hasPrefix("extrapolate \(Extrapolate.release) (numerics engine-"), "\(message)")
            #expect(Extrapolate.exitCode(for: error) == .success)
        }
    }

    @Test("A file that cannot be written names the path and the cause, and is not a usage error")
    func unwritable() throws {
        let scratch = try ScratchFolder("write")
        defer { scratch.remove() }
        let cases = [
            (scratch.path("no/such/folder/out.csv"), "the folder \(scratch.path("no/such/folder")) does not exist"),
            (scratch.url.path, "it is a folder; give a file path"),
        ]
        for (path, cause) in cases {
            do {
                try write("x", to: path)
                Issue.record("\(path) was written")
            } catch {
                #expect("\(error)" == "cannot write \(path): \(cause)")
                #expect(!"\(error)".contains("NSCocoaErrorDomain"))
                #expect(Extrapolate.exitCode(for: error) == .failure)
                #expect(!Extrapolate.fullMessage(for: error).contains("Usage:"))
            }
        }
    }
}
