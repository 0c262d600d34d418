import ArgumentParser
import Foundation
import Testing
import TestSupport

@testable import ExtrapolateCLI

/// Every `extrapolate …` command in a code block of the README and `Docs/` must parse as written (options exist,
/// values are valid); those whose files ship with the repository also run, writing any output to a scratch folder.
@Suite("The documentation's commands")
struct DocumentationCommandTests {
    /// A command found in a document: its arguments after `extrapolate`, and where it is.
    struct Command: CustomStringConvertible {
        var arguments: [String]
        var place: String
        /// Written as `swift run -c release`: a long job, parsed but not run by the tests.
        var release: Bool
        var description: String { "\(place): extrapolate \(arguments.joined(separator: " "))" }
    }

    static let documents =
        ["README.md", "Datasets/README.md", "Benchmarks/README.md"]
        + ((try? FileManager.default.contentsOfDirectory(atPath: Repository.root.appendingPathComponent("Docs").path))
        ?? [])
        .filter { $0.hasSuffix(".md") }.sorted().map { "Docs/\($0)" }

    /// The commands inside fenced code blocks, with `\` continuations joined, comments dropped and globs expanded.
    static func commands(in document: String) throws -> [Command] {
        let text = try String(contentsOf: Repository.root.appendingPathComponent(document), encoding: .utf8)
        var commands: [Command] = []
        var inBlock = false
        var pending = ""
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if raw.hasPrefix("```") { inBlock.toggle(); continue }
            guard inBlock else { continue }
            var line = String(raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0])
                .trimmingCharacters(in: .whitespaces)
            let continued = line.hasSuffix("\\")
            if continued { line.removeLast() }
            pending += " " + line
            if continued { continue }
            // A trailing `&` (run in the background) is the shell's, not the command's.
            var words = pending.split(separator: " ").map(String.init)
            if words.last == "&" { words.removeLast() }
            pending = ""
            // `swift run [-c release] extrapolate …` or a built binary: `.build/release/extrapolate …`.
            guard
                let start = words.firstIndex(where: {
                    $0 == "extrapolate" || ($0.hasPrefix(".build/") && $0.hasSuffix("/extrapolate"))
                }),
                words[..<start].allSatisfy({ ["swift", "run", "-c", "release"].contains($0) })
            else { continue }
            let arguments = words[(start + 1)...].flatMap { word in word.contains("*") ? expand(word) : [word] }
            commands.append(
                Command(
                    arguments: arguments, place: "\(document):\(number + 1)",
                    release: words[...start].contains { $0 == "release" || $0.hasPrefix(".build/release/") }))
        }
        return commands
    }

    static func expand(_ pattern: String) -> [String] {
        var matches = glob_t()
        defer { globfree(&matches) }
        guard glob(Repository.root.appendingPathComponent(pattern).path, 0, nil, &matches) == 0 else {
            return [pattern]
        }
        let root = Repository.root.path + "/"
        return (0..<Int(matches.gl_pathc)).compactMap { index in
            matches.gl_pathv[index].map { String(cString: $0).replacingOccurrences(of: root, with: "") }
        }
    }

    @Test("Every documented command parses as written", arguments: documents)
    func parses(_ document: String) throws {
        for command in try Self.commands(in: document)
        where !command.arguments.contains(where: { $0.hasPrefix("[") || $0 == "…" }) {
            do { _ = try Extrapolate.parseAsRoot(command.arguments) } catch {
                Issue.record("\(command)\n  \(Extrapolate.message(for: error))")
            }
        }
    }

    @Test("The README's commands on the bundled data and demo runs run")
    func runs() async throws {
        let scratch = try ScratchFolder("docs")
        defer { scratch.remove() }
        let previous = FileManager.default.currentDirectoryPath
        FileManager.default.changeCurrentDirectoryPath(Repository.root.path)
        defer { FileManager.default.changeCurrentDirectoryPath(previous) }
        var ran = 0
        for command in try Self.commands(in: "README.md") {
            let paths = command.arguments.filter { $0.hasPrefix("Datasets/") || $0.hasPrefix("Tests/") }
            // `serve` runs until stopped: the browser and process tests run it. `train` runs for minutes: its own
            // tests (TrainingRunTests) train short runs.
            guard !command.release, !["serve", "train"].contains(command.arguments.first), !paths.isEmpty,
                paths.allSatisfy({ FileManager.default.fileExists(atPath: $0) }),
                !command.arguments.contains(where: { ["CKPT", "--output", "-o"].contains($0) })
            else { continue }
            // Outputs go to the scratch folder, not into the repository.
            var arguments = command.arguments
            for (index, word) in arguments.enumerated()
            where index > 0 && ["--svg", "--csv", "--json-output"].contains(arguments[index - 1]) {
                arguments[index] = scratch.path((word as NSString).lastPathComponent)
            }
            // The daemon's store too: never the user's own.
            if ["watch", "status", "results"].contains(arguments.first), !arguments.contains("--store") {
                arguments += ["--store", scratch.path("results.sqlite")]
            }
            var parsed = try Extrapolate.parseAsRoot(arguments)
            if var command = parsed as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try parsed.run()
            }
            ran += 1
        }
        #expect(ran >= 4, "ran \(ran) README commands")
    }
}
