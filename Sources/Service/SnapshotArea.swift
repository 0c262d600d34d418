import Checkpoints
import Foundation

/// Private copies of checkpoint files that their trainers rewrite in place (nanoGPT's `ckpt.pt`, any weights file
/// whose name carries no step): each complete version is copied the moment its own structure proves it complete
/// (a safetensors header and length, a zip central directory), and evaluated from the copy, so the next save cannot
/// take it away before its turn. A copy is deleted when its version's jobs end; the area's size is bounded.
final class SnapshotArea: @unchecked Sendable {
    /// The folder copies live in (`snapshots/` beside the store).
    let folder: String
    /// Most bytes the copies may take together; past it, versions are registered without a copy (and a rewrite
    /// before their turn loses them, as without snapshots).
    let limit: Int

    init(folder: String, limit: Int) {
        self.folder = folder
        self.limit = limit
    }

    /// Whether the candidate is one file whose completeness its own bytes prove: a `.safetensors` file, or a
    /// zip-format PyTorch file (what `torch.save` writes since 1.6; a legacy pickle stream has no directory).
    static func provesItself(_ candidate: CheckpointCandidate) -> Bool {
        guard candidate.files.count == 1, let file = candidate.files.first?.path else { return false }
        if file.hasSuffix(".safetensors") { return true }
        guard CheckpointLocation.torchExtensions.contains(where: file.hasSuffix),
            let handle = FileHandle(forReadingAtPath: file)
        else { return false }
        defer { try? handle.close() }  // read-only: closing cannot lose data
        // An unreadable file is no zip here; the completeness check reports why it cannot be read.
        return (try? handle.read(upToCount: 4)) == Data([0x50, 0x4B, 0x03, 0x04])
    }

    /// Whether each save of the candidate lands on the same path: one self-proving file whose name carries no step
    /// (nanoGPT's `ckpt.pt`, a run folder's lone `model.safetensors`).
    static func rewrittenInPlace(_ candidate: CheckpointCandidate) -> Bool {
        candidate.name.step == nil && provesItself(candidate)
    }

    /// Bytes the copies take now.
    var used: Int {
        copies().reduce(0) { total, copy in
            // A copy's folder holds its one file; one removed meanwhile counts nothing.
            let names = (try? FileManager.default.contentsOfDirectory(atPath: copy)) ?? []
            return total
                + names.reduce(0) { $0 + (FileStamp.of((copy as NSString).appendingPathComponent($1))?.size ?? 0) }
        }
    }

    /// Every copy in the area (a folder each, holding the file under its own name).
    func copies() -> [String] {
        // No area yet (nothing copied so far) lists nothing.
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.sorted().map { (folder as NSString).appendingPathComponent($0) }
    }

    /// What `take` did.
    enum Taken: Equatable {
        /// The copy, complete and unchanged while it was read: what to load in place of the candidate's path (a
        /// file for a file, a folder holding the file under its own name for a folder).
        case copy(String)
        /// The file changed (or vanished) while it was copied, or the copy is not complete: try again later.
        case changed
        /// The area has no room for it.
        case full
    }

    /// Copies the candidate's one file (a reflink where the filesystem can, else bytes) and checks that the original
    /// did not change meanwhile and that the copy is a complete checkpoint.
    /// - Throws: `SnapshotError` when the area cannot be written (permissions, a full disk).
    func take(_ candidate: CheckpointCandidate) throws(SnapshotError) -> Taken {
        guard let stamp = candidate.files.first else { return .changed }
        if used + stamp.size > limit { return .full }
        let holder = (folder as NSString).appendingPathComponent(UUID().uuidString)
        do { try FileManager.default.createDirectory(atPath: holder, withIntermediateDirectories: true) } catch {
            throw SnapshotError(path: folder, reason: FileProblem.describe(error, path: holder))
        }
        let file = (holder as NSString).appendingPathComponent((stamp.path as NSString).lastPathComponent)
        let copy = stamp.path == candidate.path ? file : holder
        do { try Self.clone(stamp.path, to: file) } catch {
            remove(copy)
            if FileStamp.of(stamp.path) != stamp { return .changed }
            throw error
        }
        let complete: Bool
        do { complete = Completeness.check(try CheckpointLocation.discover(copy)) == .complete } catch {
            complete = false
        }
        guard FileStamp.of(stamp.path) == stamp, FileStamp.of(file)?.size == stamp.size, complete else {
            remove(copy)
            return .changed
        }
        return .copy(copy)
    }

    /// Deletes a copy (its folder; nothing when it is already gone).
    func remove(_ copy: String) {
        // Already removed (by a cleanup at start, or by hand) is the same outcome.
        try? FileManager.default.removeItem(atPath: holder(of: copy) ?? copy)
    }

    /// The folder in the area that holds `copy` (a copy is that folder, or the file inside it), or `nil` when `copy`
    /// is not in the area.
    func holder(of copy: String) -> String? {
        guard copy.hasPrefix(folder + "/"),
            let first = copy.dropFirst(folder.count + 1).split(separator: "/").first
        else { return nil }
        return (folder as NSString).appendingPathComponent(String(first))
    }

    /// Copies `source` to `target`: `FICLONE` shares the blocks on filesystems that can (btrfs, XFS), else a plain
    /// copy of the bytes.
    private static func clone(_ source: String, to target: String) throws(SnapshotError) {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw SnapshotError(path: source, reason: String(cString: strerror(errno))) }
        defer { close(input) }
        let output = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard output >= 0 else { throw SnapshotError(path: target, reason: String(cString: strerror(errno))) }
        defer { close(output) }
        let ficlone: UInt = 0x4004_9409  // _IOW(0x94, 9, int)
        if ioctl(output, ficlone, input) == 0 { return }
        var buffer = [UInt8](repeating: 0, count: 1 << 22)
        while true {
            let count = read(input, &buffer, buffer.count)
            if count == 0 { return }
            guard count > 0 else { throw SnapshotError(path: source, reason: String(cString: strerror(errno))) }
            var written = 0
            while written < count {
                let n = buffer.withUnsafeBytes { write(output, $0.baseAddress! + written, count - written) }
                guard n > 0 else { throw SnapshotError(path: target, reason: String(cString: strerror(errno))) }
                written += n
            }
        }
    }
}

/// The snapshot area cannot be written.
struct SnapshotError: Error, CustomStringConvertible {
    var path: String
    var reason: String
    var description: String { "cannot copy a checkpoint into the snapshot area (\(path)): \(reason)" }
}
