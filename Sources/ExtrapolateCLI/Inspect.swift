import Architecture
import ArgumentParser
import Checkpoints
import Engine
import Foundation
import Reports

extension Extrapolate {
    /// `extrapolate inspect`: the tree, parameter manifest and resolved position parameters of an architecture.
    public struct Inspect: ParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Show an architecture: its layers, every tensor it expects, and its position parameters.",
            discussion: """
                FILE is a Hugging Face config.json (model_type gpt2, opt, bloom, mpt, gpt_neox or llama), a folder
                holding one, an Extrapolate architecture JSON file (Docs/architecture-json.md), or what
                `inspect --json` printed (its `architecture` field is read).
                Position parameters are resolved at --length tokens: ALiBi slopes per head, rotary frequencies
                after any extension (YaRN, llama3, dynamic NTK, …), T5 bucket boundaries.
                """
        )

        @Argument(help: "A config.json, a folder holding one, or an architecture JSON file.") var file: String?
        @Option(
            help:
                "A built-in architecture instead of a file: \(Architecture.presets.keys.sorted().joined(separator: ", "))."
        )
        var preset: String?
        @Option(
            parsing: .unconditional,
            help: "Resolve position parameters at this many tokens (default: the trained length).")
        var length: Int?
        @Flag(help: "Print JSON (Docs/json.md) instead of text.") var json = false

        public init() {}

        public func validate() throws {
            if (file == nil) == (preset == nil) { throw ValidationError("give exactly one of FILE or --preset NAME") }
            if let preset, Architecture.presets[preset] == nil {
                throw ValidationError(
                    "unknown preset '\(preset)'; known: \(Architecture.presets.keys.sorted().joined(separator: ", "))")
            }
            if let length, length < 1 { throw ValidationError("--length must be at least 1") }
        }

        public func run() throws {
            var notes: [String] = []
            var architecture =
                try preset.flatMap { Architecture.presets[$0] } ?? ArchitectureFile.load(path: file ?? "")
            // A checkpoint folder: the architecture the weights will actually be bound with.
            if let file, let location = try? CheckpointLocation.discover(file), let checkpoint = try? location.open() {
                let found = try LanguageModel.architecture(for: location, checkpoint: checkpoint)
                (architecture, notes) = (found.architecture, found.notes)
            }
            var report = InspectReport(architecture: architecture, length: length ?? architecture.trainedLength)
            report.notes = notes
            print(json ? try report.json() : report.text())
        }
    }
}
