import Foundation

/// Reads an architecture from a config.json, a folder holding one, architecture JSON, or the JSON that
/// `extrapolate inspect --json` prints (its `architecture` field) — deciding by content.
public enum ArchitectureFile {
    /// Loads and validates the architecture at `path`.
    /// - Throws: `ArchitectureError` naming the file and what is wrong.
    public static func load(path: String) throws(ArchitectureError) -> Architecture {
        let url = URL(fileURLWithPath: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .unreadable(path: path, reason: "no such file or folder")
        }
        if isDirectory.boolValue { return try HuggingFace.architecture(configAt: url) }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw .unreadable(path: path, reason: (error as NSError).localizedDescription)
        }
        if let syntax = DecodingFailure.syntaxError(in: data) { throw .unreadable(path: path, reason: syntax) }
        guard var object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw .unreadable(path: path, reason: "not a JSON object; expected a config.json or architecture JSON")
        }
        if object["model_type"] != nil { return try HuggingFace.architecture(configJSON: data, path: path) }
        var json = data
        if object["layers"] == nil, let wrapped = object["architecture"] as? [String: Any], wrapped["layers"] != nil,
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
        return architecture
    }
}
