import ArgumentParser
import Checkpoints
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

    @Test("--extensions takes names separated by spaces or commas, like every other list; a wrong one is named")
    func extensionsLists() throws {
        for arguments in [["yarn", "linear"], ["yarn,linear"], ["yarn, linear"]] {
            let command = try Extrapolate.parseAsRoot(
                ["passkey", "--checkpoint", "x", "--bytes", "--extensions"] + arguments)
            #expect((command as? Extrapolate.Passkey)?.lengths.extensions == [.yarn, .linear], "\(arguments)")
        }
        #expect {
            _ = try Extrapolate.parseAsRoot(["sweep", "--checkpoint", "x", "--extensions", "yarn,ntq"])
        } throws: {
            Extrapolate.message(for: $0).contains("--extensions takes linear, ntk, dynamic, yarn, llama3, found 'ntq'")
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

    @Test("A folder given for a file and a file given for a folder are said as such, in words")
    func foldersAndFiles() async throws {
        let scratch = try ScratchFolder("paths")
        defer { scratch.remove() }
        let file = scratch.path("report.txt")
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        let error = CocoaError(.fileWriteUnknown)
        #expect(FileProblem.describe(error, path: file, folder: true) == "it is a file; give a folder")
        #expect(FileProblem.describe(error, path: scratch.url.path) == "it is a folder; give a file path")
        let (status, _, errors) = try await Executable.run(
            ["watch", "--config", scratch.url.path, "--once"], in: scratch)
        #expect(status == 64 && errors.contains("cannot read: it is a folder; give a file path"), "\(errors)")
        #expect(!errors.contains("NSCocoaErrorDomain") && !errors.contains("Usage:"))
    }

    @Test("Flags that would be ignored are refused: serve --json, watch --json without --once")
    func ignoredFlagsAreRefused() {
        for arguments in [["serve", "runs", "--data", "d", "--json"], ["watch", "runs", "--data", "d", "--json"]] {
            do {
                _ = try Extrapolate.parseAsRoot(arguments)
                Issue.record("\(arguments) was accepted")
            } catch {
                #expect(Extrapolate.exitCode(for: error) == .validationFailure)
                #expect(Extrapolate.message(for: error).contains("--json"))
            }
        }
        #expect(throws: Never.self) {
            _ = try Extrapolate.parseAsRoot(["watch", "runs", "--data", "d", "--json", "--once"])
        }
    }
}
