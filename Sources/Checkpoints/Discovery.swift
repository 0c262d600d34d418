import Foundation

/// A file's size and modification time: what quiescence compares between two looks.
public struct FileStamp: Sendable, Hashable, Codable {
    public var path: String
    public var size: Int
    /// Seconds since 1970 (nanosecond resolution where the filesystem has it).
    public var modified: Double

    public init(path: String, size: Int, modified: Double) {
        self.path = path
        self.size = size
        self.modified = modified
    }

    /// The stamp of a regular file at `path`, or `nil` when there is none (gone, a folder, a FIFO).
    public static func of(_ path: String) -> FileStamp? {
        var status = stat()
        guard stat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else { return nil }
        let modified = Double(status.st_mtim.tv_sec) + Double(status.st_mtim.tv_nsec) / 1e9
        return FileStamp(path: path, size: Int(status.st_size), modified: modified)
    }
}

/// A checkpoint found in a run folder: where it is, its name, and the files that make it up.
public struct CheckpointCandidate: Sendable, Hashable {
    /// The path evaluation loads: a `checkpoint-N/` folder, a weights file, or a plain checkpoint folder.
    public var path: String
    /// The run folder it belongs to.
    public var runFolder: String
    /// Run (the run folder's name), step and naming scheme.
    public var name: CheckpointName
    /// Every file the checkpoint is read from (weights, shards, index, config), sorted by path.
    public var files: [FileStamp]

    public init(path: String, runFolder: String, name: CheckpointName, files: [FileStamp]) {
        self.path = path
        self.runFolder = runFolder
        self.name = name
        self.files = files
    }

    /// Total bytes.
    public var size: Int { files.reduce(0) { $0 + $1.size } }
    /// The newest modification time of its files.
    public var modified: Double { files.map(\.modified).max() ?? 0 }
}

/// Finds checkpoints under a watched folder: the folder itself when it is a run, and run folders below it.
///
/// A folder is a run when it holds checkpoints named by one of the `CheckpointNamingScheme`s: Hugging Face
/// `checkpoint-N/` folders, `step-N.safetensors` or `NAME-N.safetensors` files, PyTorch files (fairseq
/// `checkpoint_E_U.pt`, Composer `epE-baB-rank0.pt`, nanoGPT's `ckpt.pt`, any other `.pt`). A folder holding weights without a
/// step (`model.safetensors`, an index and its shards, with `config.json`) is a plain checkpoint of the run named
/// after it. Temporary names (`Completeness.isTemporary`) are never looked at; sub-folders are searched to
/// `maximumDepth`.
public enum Discovery {
    /// How deep below a watched folder run folders are looked for.
    public static let maximumDepth = 4

    /// The file `extrapolate train` keeps beside its checkpoints to resume from (parameters and optimizer moments
    /// under its own names): never a checkpoint.
    public static let trainingStateFile = "train-state.safetensors"

    /// What a scan found under a watched folder.
    public struct Found: Sendable {
        /// Every checkpoint, sorted by path.
        public var candidates: [CheckpointCandidate] = []
        /// Every folder looked into (the watcher watches these); the root first when it could be listed.
        public var folders: [String] = []
        /// Folders that exist but could not be listed (permissions, an I/O error), each with the reason: what they
        /// hold is unknown, not gone.
        public var unreadable: [String: String] = [:]
        /// The real paths of the folders looked into: a symbolic link back to one of them (a loop, or a link to the
        /// watched folder inside it) is not followed again, so no checkpoint is found twice under two names.
        var visited: Set<String> = []
    }

    /// Every checkpoint under `root`, every folder looked into, and the folders that could not be read.
    public static func scan(_ root: String) -> Found {
        var found = Found()
        scan(folder: standardized(root), depth: 0, into: &found)
        found.candidates.sort { $0.path < $1.path }
        return found
    }

    /// `path` with every symbolic link resolved (realpath(3)); `path` itself when it cannot be resolved.
    static func realPath(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The names in `folder`; nil when it cannot be listed, with the reason recorded unless it no longer exists (a
    /// folder removed between two looks is simply gone).
    private static func list(_ folder: String, into found: inout Found) -> [String]? {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: folder)
        } catch {
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue {
                // The system's reason ("Permission denied", "Input/output error"), as opening it again reports it.
                if let handle = opendir(folder) {
                    closedir(handle)
                    found.unreadable[folder] = "cannot be listed: \(error.localizedDescription)"
                } else {
                    found.unreadable[folder] = String(cString: strerror(errno))
                }
            }
            return nil
        }
    }

    private static func scan(folder: String, depth: Int, into found: inout Found) {
        let manager = FileManager.default
        guard found.visited.insert(realPath(folder)).inserted else { return }
        guard let names = list(folder, into: &found) else { return }
        found.folders.append(folder)
        let run = (folder as NSString).lastPathComponent
        var plainWeights: [String] = []
        for name in names.sorted() where !Completeness.isTemporary(name) && name != trainingStateFile {
            let path = (folder as NSString).appendingPathComponent(name)
            var isFolder: ObjCBool = false
            guard manager.fileExists(atPath: path, isDirectory: &isFolder) else { continue }
            if isFolder.boolValue {
                if let (scheme, step) = steppedFolder(name) {
                    found.folders.append(path)
                    guard let inside = list(path, into: &found) else { continue }
                    let files = checkpointFiles(in: path, names: inside)
                    if !files.isEmpty {
                        found.candidates.append(
                            CheckpointCandidate(
                                path: path, runFolder: folder,
                                name: CheckpointName(run: run, step: step, scheme: scheme), files: files))
                    }
                } else if depth < maximumDepth {
                    scan(folder: path, depth: depth + 1, into: &found)
                }
                continue
            }
            if Self.isTorchCheckpointFile(name) {
                // Each PyTorch file is a checkpoint of its own: stepped by its name, nanoGPT's ckpt.pt by its
                // iter_num (read at registration), fairseq's checkpoint_last.pt / checkpoint_best.pt without a step.
                let (scheme, step) = steppedFile(name) ?? (name == "ckpt.pt" ? .nanoGPT : .plain, nil)
                found.candidates.append(
                    CheckpointCandidate(
                        path: path, runFolder: folder, name: CheckpointName(run: run, step: step, scheme: scheme),
                        files: fileCheckpointFiles(path)))
                continue
            }
            guard
                name.hasSuffix(".safetensors") || name.hasSuffix(".safetensors.index.json")
                    || name == "pytorch_model.bin" || name == "pytorch_model.bin.index.json"
            else { continue }
            if let (scheme, step) = steppedFile(name) {
                found.candidates.append(
                    CheckpointCandidate(
                        path: path, runFolder: folder, name: CheckpointName(run: run, step: step, scheme: scheme),
                        files: fileCheckpointFiles(path)))
            } else {
                plainWeights.append(name)
            }
        }
        // Weights without a step: the folder itself is one checkpoint (what `score FOLDER` reads).
        if !plainWeights.isEmpty {
            let files = checkpointFiles(in: folder)
            let parent = ((folder as NSString).deletingLastPathComponent as NSString).lastPathComponent
            found.candidates.append(
                CheckpointCandidate(
                    path: folder, runFolder: folder,
                    name: CheckpointName(run: run.isEmpty ? parent : run, step: nil, scheme: .plain), files: files))
        }
    }

    /// The candidate at `path` now (a file or folder found earlier by `scan`), or `nil` when its files are gone.
    public static func candidate(at path: String, runFolder: String) -> CheckpointCandidate? {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { return nil }
        let files = isFolder.boolValue ? checkpointFiles(in: path) : fileCheckpointFiles(path)
        guard !files.isEmpty else { return nil }
        let name = CheckpointName(path: path)
        return CheckpointCandidate(path: path, runFolder: runFolder, name: name, files: files)
    }

    /// A weights file and the `config.json` beside it, if any.
    static func fileCheckpointFiles(_ path: String) -> [FileStamp] {
        let config = FileStamp.of(
            ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent("config.json"))
        return [FileStamp.of(path), config].compactMap { $0 }
    }

    /// The scheme and step of a checkpoint folder whose name carries one (`checkpoint-N`, `stepN`, `global_stepN`, …).
    static func steppedFolder(_ name: String) -> (CheckpointNamingScheme, Int)? {
        for scheme in CheckpointNamingScheme.folderSchemes {
            if let step = scheme.step(in: name) { return (scheme, step) }
        }
        return nil
    }

    /// The scheme and step of a weights file whose name carries one.
    static func steppedFile(_ name: String) -> (CheckpointNamingScheme, Int)? {
        for scheme in [CheckpointNamingScheme.stepFile, .fairseq, .composer, .numberedFile] {
            if let step = scheme.step(in: name) { return (scheme, step) }
        }
        return nil
    }

    /// The files a checkpoint folder is read from: weights (and PyTorch weights, so that a folder of them is
    /// reported as not readable yet rather than ignored), shard indexes and `config.json`. Optimizer states and
    /// trainer logs are not part of a checkpoint's content.
    static func checkpointFiles(in folder: String, names: [String]? = nil) -> [FileStamp] {
        // A folder that cannot be listed (gone since, or unreadable) holds no files to read; a scan records an
        // unreadable one (`Found.unreadable`) before asking.
        let names = names ?? (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        let weights = names.filter { !Completeness.isTemporary($0) && isWeights($0) }
        guard !weights.isEmpty else { return [] }
        let config = names.contains("config.json") ? ["config.json"] : []
        return (weights + config).sorted().compactMap { FileStamp.of((folder as NSString).appendingPathComponent($0)) }
    }

    /// A PyTorch file that is a checkpoint by itself in a run folder (`.pt`, `.pth`, `.ckpt`; not optimizer or RNG
    /// state, not Hugging Face's `pytorch_model*.bin`, which belong to a folder checkpoint).
    static func isTorchCheckpointFile(_ name: String) -> Bool {
        (name.hasSuffix(".pt") || name.hasSuffix(".pth") || name.hasSuffix(".ckpt"))
            && !CheckpointNamingScheme.isTrainingState(name)
            && !(name.hasPrefix("ep") && name.contains("-rank") && !name.hasSuffix("-rank0.pt"))
    }

    static func isWeights(_ name: String) -> Bool {
        name.hasSuffix(".safetensors") || name.hasSuffix(".safetensors.index.json") || name == "pytorch_model.bin"
            || name == "pytorch_model.bin.index.json" || (name.hasPrefix("pytorch_model-") && name.hasSuffix(".bin"))
    }

    static func standardized(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.path
    }
}
