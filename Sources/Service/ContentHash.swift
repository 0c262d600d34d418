import Checkpoints
import Foundation
import TokenData

/// The identity of a checkpoint's bytes: `xxh64:` over each file's role, size and contents, in path order. A single
/// weights file's role is `weights` whatever it is called, so the same checkpoint copied or renamed elsewhere has
/// the same hash and its results are not computed again; inside a checkpoint folder each file's role is its name
/// (an index refers to its shards by name). A file rewritten in place has a new hash.
enum ContentHash {
    /// Hashes the candidate's files, or returns `nil` when one changed (size or modification time) while it was
    /// read, or disappeared: the checkpoint is not quiescent after all.
    static func of(_ candidate: CheckpointCandidate) throws(HashingError) -> String? {
        var hash = XXH64()
        for stamp in candidate.files.sorted(by: { $0.path < $1.path }) {
            let role = stamp.path == candidate.path ? "weights" : (stamp.path as NSString).lastPathComponent
            Array(role.utf8).withUnsafeBytes { hash.update($0) }
            withUnsafeBytes(of: UInt64(stamp.size).littleEndian) { hash.update($0) }
            guard let handle = FileHandle(forReadingAtPath: stamp.path) else {
                if FileStamp.of(stamp.path) == nil { return nil }
                throw HashingError(path: stamp.path, reason: "cannot open for reading (permissions?)")
            }
            defer { try? handle.close() }  // read-only: closing cannot lose data
            do {
                while let chunk = try handle.read(upToCount: 1 << 22), !chunk.isEmpty {
                    chunk.withUnsafeBytes { hash.update($0) }
                }
            } catch {
                throw HashingError(path: stamp.path, reason: (error as NSError).localizedDescription)
            }
            guard FileStamp.of(stamp.path) == stamp else { return nil }
        }
        return String(format: "xxh64:%016llx", hash.digest())
    }

    /// A stand-in identity for files that are not a readable checkpoint (incomplete or invalid): their stamps.
    static func stand(in files: [FileStamp], prefix: String) -> String {
        var hash = XXH64()
        for stamp in files.sorted(by: { $0.path < $1.path }) {
            Array("\(stamp.path)|\(stamp.size)|\(stamp.modified)\n".utf8).withUnsafeBytes { hash.update($0) }
        }
        return String(format: "\(prefix):%016llx", hash.digest())
    }
}

/// A checkpoint file that could not be read to hash it.
struct HashingError: Error, CustomStringConvertible {
    var path: String
    var reason: String
    var description: String { "\(path): \(reason)" }
}
