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
                FILE is a Hugging Face config.json (model_type gpt2, opt, bloom, mpt, gpt_neox or llama), a folder \
                holding one, an Extrapolate architecture JSON file (Docs/architecture-json.md), or what \
                `inspect --json` printed (its `architecture` field is read). \
                Position parameters are resolved at --length tokens: ALiBi slopes per head, rotary frequencies \
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
            let (architecture, notes, trained, audit) = try load()
            var report = InspectReport(architecture: architecture, length: length ?? architecture.trainedLength)
            report.notes = notes
            report.trainedLength = trained
            report.configNotRead = audit?.unread ?? []
            print(json ? try report.json() : report.text())
        }

        /// The preset; for a checkpoint, the architecture its weights will be bound with (and what was decided from
        /// them); otherwise the config or architecture file. Config keys that change the model but are not read are
        /// shown, not refused: inspecting is how one finds them.
        func load() throws -> (Architecture, notes: [String], trainedLength: TrainedLength?, audit: ConfigAudit?) {
            if let preset, let architecture = Architecture.presets[preset] { return (architecture, [], nil, nil) }
            let path = file ?? ""
            // A weights file is a checkpoint: its errors are the answer (a config or architecture JSON is not).
            if path.hasSuffix(".safetensors") || CheckpointLocation.torchExtensions.contains(where: path.hasSuffix) {
                let location = try CheckpointLocation.discover(path)
                let found = try LanguageModel.architecture(
                    for: location, checkpoint: try location.open(), allowUnknownConfigKeys: true)
                return (found.architecture, found.notes, found.trainedLength, found.configAudit)
            }
            // Not a checkpoint (a config or architecture JSON): read as a file below.
            if let location = try? CheckpointLocation.discover(path), let checkpoint = try? location.open() {
                let found = try LanguageModel.architecture(
                    for: location, checkpoint: checkpoint, allowUnknownConfigKeys: true)
                return (found.architecture, found.notes, found.trainedLength, found.configAudit)
            }
            let (architecture, audit) = try ArchitectureFile.loadAudited(path: path, allowingUnknownKeys: true)
            let trained = HuggingFace.trainedLength(of: architecture, configAt: URL(fileURLWithPath: path))
            return (architecture, [], trained, audit)
        }
    }
}
