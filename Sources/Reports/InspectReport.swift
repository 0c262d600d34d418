import Architecture
import Foundation

/// What `extrapolate inspect` shows, as text for people and JSON for scripts.
public struct InspectReport: Encodable, Sendable {
    /// One length of the 1×–16× grid and whether the architecture is defined there.
    public struct LengthSupport: Encodable, Sendable {
        public var length: Int
        public var supported: Bool
        public var reason: String?
    }

    public var architecture: Architecture
    public var contentHash: String
    public var parameterCount: Int
    public var tensors: [TensorSpec]
    public var positions: [ResolvedPosition]
    public var support: [LengthSupport]
    /// What was decided from a checkpoint's tensors rather than its config.
    public var notes: [String] = []
    /// The trained length and where it came from (`nil` for a preset or an architecture JSON, which state it).
    public var trainedLength: TrainedLength?
    /// Positions added to the input embedding (learned absolute, sinusoidal), described; `nil` when none.
    public var inputPositions: String?
    /// The config.json keys its importer did not read (`ConfigAudit`); empty for presets and architecture JSON.
    public var configNotRead: [UnreadConfigKey] = []

    /// The report of `architecture` with position parameters resolved at `length` tokens.
    public init(architecture: Architecture, length: Int) {
        self.architecture = architecture
        contentHash = architecture.contentHash
        let manifest = architecture.manifest
        parameterCount = manifest.parameterCount
        tensors = manifest.tensors
        positions = architecture.resolvedPositions(length: length)
        inputPositions = architecture.inputPositionSummary
        support = [1, 2, 4, 8, 16].map { multiple in
            let n = multiple * architecture.trainedLength
            switch architecture.support(at: n) {
            case .supported: return LengthSupport(length: n, supported: true)
            case .unsupported(let reason): return LengthSupport(length: n, supported: false, reason: reason)
            }
        }
    }

    /// The JSON document (`Docs/json.md`, "inspect"); its `architecture` field is architecture JSON.
    public func json() throws -> String { try ReportJSON.encode(self) }

    /// Text for people.
    public func text() -> String {
        var lines = [architecture.description, ""]
        lines += notes.map { "note: \($0)" } + (notes.isEmpty ? [] : [""])
        if !configNotRead.isEmpty {
            let unknown = configNotRead.filter { $0.changesModel == nil }
            let changing = configNotRead.filter { $0.changesModel != nil }
            if !unknown.isEmpty { lines.append("not read: \(unknown.map(\.description).joined(separator: ", "))") }
            for key in changing {
                lines.append(
                    "not read, changes the model: \(key) (\(key.changesModel ?? "")); sweep, score and the daemon "
                        + "refuse this config unless given --allow-unknown-config-keys")
            }
            lines.append("")
        }
        if let trainedLength {
            lines.append("trained at    \(trainedLength.tokens) tokens (\(trainedLength.provenance))")
            if trainedLength.source == .assumedDefault || trainedLength.source == .config {
                lines.append(
                    "              if the run trained on shorter sequences, give sweep, compare, watch or serve "
                        + "--trained-length N")
            }
        }
        lines.append("content hash  \(contentHash)")
        lines.append("parameters    \(parameterCount.formatted()) in \(tensors.count) tensors")
        lines.append("")
        lines.append("Tensors (checkpoint name, stored shape, layout)")
        let nameWidth = tensors.map(\.name.count).max() ?? 0
        for tensor in tensors {
            let shape = "[" + tensor.shape.map(String.init).joined(separator: ", ") + "]"
            lines.append(
                "  " + tensor.name.padding(toLength: nameWidth + 2, withPad: " ", startingAt: 0)
                    + shape.padding(toLength: 16, withPad: " ", startingAt: 0) + tensor.layout.description)
        }
        lines.append("")
        if let inputPositions { lines.append("Position: \(inputPositions)") }
        // Attention without a method of its own says nothing more when the input carries the positions.
        lines.append(
            contentsOf: positions.filter { inputPositions == nil || $0.kind != .none }.flatMap(Self.describe))
        lines.append("")
        lines.append("Defined at 1×–16× the trained length")
        for entry in support {
            lines.append(
                "  \(String(entry.length).padding(toLength: 8, withPad: " ", startingAt: 0))"
                    + (entry.supported ? "yes" : "no — \(entry.reason ?? "")"))
        }
        return lines.joined(separator: "\n")
    }

    static func describe(_ p: ResolvedPosition) -> [String] {
        func list(_ values: [Double]) -> String { values.map { String(format: "%.6g", $0) }.joined(separator: ", ") }
        var lines = ["Position: \(p.method) (\(p.kind.rawValue)) at \(p.length) tokens"]
        if let window = p.window { lines.append("  sliding window      \(window) keys") }
        if let slopes = p.slopes { lines.append("  slopes per head     \(list(slopes))") }
        if let d = p.rotaryWidth { lines.append("  rotated dimensions  \(d) per head") }
        if let scaling = p.scaling { lines.append("  extension           \(scaling)") }
        if let factor = p.attentionFactor { lines.append("  attention factor    \(String(format: "%.6g", factor))") }
        if let inverse = p.inverseFrequencies { lines.append("  inverse frequencies \(list(inverse))") }
        if let scales = p.pairScales { lines.append("  xPos pair scales    \(list(scales))") }
        if let bounds = p.bucketBoundaries {
            lines.append("  bucket starts (distance) \(bounds.map(String.init).joined(separator: ", "))")
        }
        return lines
    }
}
