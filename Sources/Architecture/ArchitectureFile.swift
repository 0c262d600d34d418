import Foundation

/// Reads an architecture from a config.json, a folder holding one, architecture JSON, or the JSON that
/// `extrapolate inspect --json` prints (its `architecture` field) — deciding by content.
public enum ArchitectureFile {
    /// Loads and validates the architecture at `path`.
    /// - Throws: `ArchitectureError` naming the file and what is wrong.
    public static func load(path: String) throws(ArchitectureError) -> Architecture {
        try loadAudited(path: path).architecture
    }

    /// Loads and validates the architecture at `path`, with the keys a config.json's importer did not read (`nil`
    /// for architecture JSON, which has none it does not read).
    /// - Parameter allowingUnknownKeys: accept unread keys known to change the model (`--allow-unknown-config-keys`).
    public static func loadAudited(
        path: String, allowingUnknownKeys: Bool = false
    ) throws(ArchitectureError) -> (architecture: Architecture, audit: ConfigAudit?) {
        let url = URL(fileURLWithPath: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .unreadable(path: path, reason: "no such file or folder")
        }
        if isDirectory.boolValue {
            let imported = try HuggingFace.imported(configAt: url, allowingUnknownKeys: allowingUnknownKeys)
            return (imported.architecture, imported.audit)
        }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw .unreadable(path: path, reason: (error as NSError).localizedDescription)
        }
        if let syntax = DecodingFailure.syntaxError(in: data) { throw .unreadable(path: path, reason: syntax) }
        guard var object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw .unreadable(path: path, reason: "not a JSON object; expected a config.json or architecture JSON")
        }
        if object["model_type"] != nil {
            let imported = try HuggingFace.imported(
                configJSON: data, path: path, allowingUnknownKeys: allowingUnknownKeys)
            return (imported.architecture, imported.audit)
        }
        var json = data
        if object["layers"] == nil, let wrapped = object["architecture"] as? [String: Any], wrapped["layers"] != nil,
            // Re-encoding what was just decoded cannot fail; if it did, the object is refused below for lacking layers.
            let inner = try? JSONSerialization.data(withJSONObject: wrapped)
        {
            (object, json) = (wrapped, inner)  // `inspect --json` output: the architecture is one field of it
        }
        guard object["layers"] != nil else {
            throw .unreadable(
                path: path, reason: "has neither 'model_type' (Hugging Face config) nor 'layers' (architecture JSON)")
        }
        let architecture = try Architecture.decode(json: json, path: path)
        try architecture.validate(readFrom: path)
        return (architecture, nil)
    }
}
