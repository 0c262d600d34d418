import Foundation

/// One problem found in an architecture: where it is and what is wrong.
public struct ArchitectureProblem: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Readable path of the node (`layers[1].repeat[0].residual[1]`), or the config key.
    public var location: String
    /// What is wrong and, where possible, what to do.
    public var message: String

    public var description: String { "\(location): \(message)" }
}

/// Errors of the `Architecture` target: invalid declarations and unreadable or unsupported configs.
public enum ArchitectureError: Error, Sendable, Hashable, CustomStringConvertible, LocalizedError {
    /// The declaration has one or more problems; all of them are listed.
    case invalid(name: String, problems: [ArchitectureProblem])
    /// A file could not be read or parsed.
    case unreadable(path: String, reason: String)
    /// A config key is missing or has the wrong type.
    case badConfig(path: String, key: String, reason: String)
    /// A config's `model_type` has no importer.
    case unknownModelType(path: String, modelType: String, supported: [String])
    /// A config uses an option the importer cannot represent faithfully.
    case unsupportedOption(path: String, key: String, value: String, reason: String)
    /// A config sets keys its importer does not read that are known to change the model (`ConfigAudit`).
    case modelChangingKeys(path: String, modelType: String, keys: [UnreadConfigKey])

    public var description: String {
        switch self {
        case .invalid(let name, let problems):
            let list = problems.map { "  - \($0)" }.joined(separator: "\n")
            return
                "architecture '\(name)' is invalid (\(problems.count) problem\(problems.count == 1 ? "" : "s")):\n\(list)"
        case .unreadable(let path, let reason):
            return "\(path): cannot read: \(reason)"
        case .badConfig(let path, let key, let reason):
            return "\(path): key '\(key)': \(reason)"
        case .unknownModelType(let path, let modelType, let supported):
            return
                "\(path): model_type '\(modelType)' is not supported; supported: \(supported.joined(separator: ", ")). "
                + "Declare the architecture with the DSL or as architecture JSON instead (see Docs/architecture-json.md)."
        case .unsupportedOption(let path, let key, let value, let reason):
            return "\(path): key '\(key)' = \(value) is not supported: \(reason)"
        case .modelChangingKeys(let path, let modelType, let keys):
            let one = keys.count == 1
            let list = keys.map { "'\($0.key)' = \($0.value) (\($0.changesModel ?? "changes the model"))" }
            return "\(path): \(list.joined(separator: ", ")) \(one ? "changes" : "change") the model, and the "
                + "\(modelType) importer does not read \(one ? "it" : "them"): the numbers would describe a different "
                + "model. Remove \(one ? "the key" : "the keys") if the checkpoint was not trained with "
                + "\(one ? "it" : "them"), or pass --allow-unknown-config-keys (daemon: allow-unknown-config-keys = "
                + "true) to evaluate without \(one ? "it" : "them"); each result then carries a warning. "
                + "Keys each family reads: Docs/config-keys.md"
        }
    }

    public var errorDescription: String? { description }
}
