import Foundation

/// Whether a checkpoint can be read now, decided from its bytes alone: trainers give no signal that they are done.
///
/// - `complete`: every safetensors file's header validates and `8 + N + last offset` equals its length, and every
///   shard a sharded index names exists and is complete;
/// - `incomplete`: something is still missing (a file shorter than its header says, a shard not there yet): it may
///   become complete, so it is looked at again when its files change;
/// - `invalid`: the bytes can never be read as they are (a header that is not JSON, offsets that overlap or leave
///   holes): an error to record, looked at again only when the files change.
public enum Completeness: Sendable, Hashable {
    case complete
    case incomplete(reason: String)
    case invalid(CheckpointError)
    /// The files exist but cannot be read now (permissions, I/O): looked at again on every scan, since fixing
    /// permissions changes neither size nor modification time.
    case unreadable(reason: String)

    /// Checks the checkpoint at `location` (opens headers only; no tensor data is read).
    public static func check(_ location: CheckpointLocation) -> Completeness {
        do {
            _ = try location.open()
            if let config = location.config {
                // A config.json still being written is not JSON yet; a complete one always is.
                guard let data = FileManager.default.contents(atPath: config),
                    (try? JSONSerialization.jsonObject(with: data)) is [String: Any]
                else { return .incomplete(reason: "\(config) is not a complete JSON object yet") }
            }
            return .complete
        } catch {
            switch error {
            case .truncated, .missingShard: return .incomplete(reason: error.description)
            case .unreadable(let path, _) where !FileManager.default.fileExists(atPath: path):
                return .incomplete(reason: "\(path) disappeared")
            case .unreadable: return .unreadable(reason: error.description)
            default: return .invalid(error)
            }
        }
    }

    /// Whether a file or folder name is one trainers and copy tools use while writing: dot-files (rsync, editors),
    /// `*.tmp`, `*.incomplete`, `*.partial` and Hugging Face's `tmp-checkpoint-*` staging folder. Never a checkpoint.
    public static func isTemporary(_ name: String) -> Bool {
        name.hasPrefix(".") || name.hasPrefix("tmp-checkpoint-") || name.hasSuffix(".tmp")
            || name.hasSuffix(".incomplete") || name.hasSuffix(".partial") || name.hasSuffix("~")
    }
}
