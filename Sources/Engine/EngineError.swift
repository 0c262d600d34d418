import Architecture
import Checkpoints
import Kernels

/// A tensor whose stored shape is not what the architecture declares.
public struct ShapeMismatch: Sendable, Hashable, CustomStringConvertible {
    /// Tensor name.
    public var name: String
    /// Shape the architecture declares.
    public var expected: [Int]
    /// Shape in the checkpoint (or a note such as the dtype that cannot be read).
    public var actual: String

    public var description: String { "\(name): expected \(expected), found \(actual)" }

    public init(name: String, expected: [Int], actual: String) {
        self.name = name
        self.expected = expected
        self.actual = actual
    }
}

/// An option of an architecture the engine does not run, and where it is.
public struct UnsupportedOption: Sendable, Hashable, CustomStringConvertible {
    /// The layer (`layers[3].attention`, …).
    public var location: String
    /// What is not supported.
    public var reason: String

    public var description: String { "\(location): \(reason)" }
}

/// Errors of the `Engine` target. Each names the file or the offending value and says what to do.
public enum EngineError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The checkpoint could not be read.
    case checkpoint(CheckpointError)
    /// The architecture could not be imported or is invalid.
    case architecture(ArchitectureError)
    /// Neither a `config.json` nor architecture metadata says what the weights are.
    case noArchitecture(path: String)
    /// The checkpoint does not match the architecture; every problem is listed at once.
    case binding(path: String, missing: [String], unused: [String], misshaped: [ShapeMismatch])
    /// The architecture is not defined at this length (learned positions past their table).
    case unsupportedLength(length: Int, reason: String)
    /// A token id is outside the model's vocabulary.
    case tokenOutOfRange(index: Int, token: Int, vocabulary: Int)
    /// Too few tokens to score anything.
    case tooFewTokens(count: Int)
    /// A combination the engine does not run.
    case unsupported(location: String, reason: String)
    /// Every option of an architecture the engine does not run, listed at once.
    case unsupportedOptions([UnsupportedOption])
    /// A pass needed more memory than could be allocated.
    case outOfMemory(KernelError)
    /// `--architecture` was given for a checkpoint that carries its own architecture.
    case architectureGivenTwice(checkpoint: String, file: String)
    /// This CPU cannot compute in the precision asked for (`Precision.unavailableReason`).
    case precisionUnavailable(String)

    public var description: String {
        switch self {
        case .checkpoint(let error):
            return error.description
        case .architecture(let error):
            return error.description
        case .noArchitecture(let path):
            return
                "\(path): no config.json next to the weights and no '\(CheckpointLocation.architectureMetadataKey)' in the "
                + "safetensors metadata, so the architecture is unknown. Add a Hugging Face config.json, or save the "
                + "architecture JSON (Docs/architecture-json.md) into the file's metadata."
        case .binding(let path, let missing, let unused, let misshaped):
            var lines = ["\(path): the checkpoint does not match the architecture:"]
            func list(_ title: String, _ items: [String]) {
                guard !items.isEmpty else { return }
                let shown = items.prefix(20).map { "    \($0)" }
                lines.append("  \(items.count) \(title):")
                lines += shown
                if items.count > 20 { lines.append("    … and \(items.count - 20) more") }
            }
            list("missing", missing)
            list("unused", unused)
            list("misshaped", misshaped.map(\.description))
            if !missing.isEmpty, missing.allSatisfy({ $0.hasSuffix(".bias") }) {
                lines.append(
                    "  Every missing tensor is a bias: the config declares biases the checkpoint does not have "
                        + "(attention_bias, mlp_bias, enable_bias, bias = true); set them to false if it was trained "
                        + "without them.")
            } else if missing.isEmpty, !unused.isEmpty, unused.allSatisfy({ $0.hasSuffix(".bias") }) {
                lines.append(
                    "  Every unused tensor is a bias: the checkpoint has biases the config does not declare "
                        + "(attention_bias or mlp_bias false, MPT's no_bias true).")
            }
            lines.append(
                "  Check that the config (or architecture JSON) describes this checkpoint; "
                    + "`extrapolate inspect` prints the tensors it expects.")
            return lines.joined(separator: "\n")
        case .unsupportedLength(let length, let reason):
            return "length \(length) is not supported by this architecture: \(reason)"
        case .tokenOutOfRange(let index, let token, let vocabulary):
            return "token \(token) at position \(index) is outside the model's vocabulary of \(vocabulary); "
                + "the tokens were made with a different tokenizer (or the wrong --dtype)"
        case .tooFewTokens(let count):
            return "need at least 2 tokens to score (the first token has no prediction); got \(count)"
        case .unsupported(let location, let reason):
            return "\(location): \(reason)"
        case .unsupportedOptions(let options):
            return "the engine does not run \(options.count == 1 ? "this option" : "these \(options.count) options"):\n"
                + options.map { "  \($0)" }.joined(separator: "\n")
        case .outOfMemory(let error):
            return error.description
        case .architectureGivenTwice(let checkpoint, let file):
            return
                "\(checkpoint) carries its own architecture (metadata '\(CheckpointLocation.architectureMetadataKey)'), "
                + "and --architecture \(file) gives another: drop --architecture to evaluate the checkpoint as it was "
                + "saved (to change only the trained length, use --trained-length)"
        case .precisionUnavailable(let reason):
            return reason
        }
    }
}
