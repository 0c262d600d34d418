import Checkpoints
import Evaluation
import Foundation
import Logging
import ResultStore

/// Finds checkpoints in the watched folders and queues each complete version once.
///
/// A candidate is looked at only when it is quiescent: its files' sizes and times unchanged for `quietSeconds`
/// (between two scans, or, on first sight, since the newest file's modification time). Then the reader decides
/// completeness (`Completeness.check`), hashes the content and registers the version: complete versions get a job
/// for their target's settings; incomplete and invalid ones are recorded with the reason and looked at again only
/// when their files change.
final class Scanner: @unchecked Sendable {
    private let configuration: DaemonConfiguration
    private let store: any ResultStore
    private let logger: Logger
    private let clock: @Sendable () -> Date
    /// Per candidate path: the stamps last seen, since when, and the stamps last registered.
    private var observations: [String: Observation] = [:]
    /// Copies of files rewritten in place, taken when complete.
    private let snapshots: SnapshotArea
    /// Files rewritten in place that changed lately, with their target and until when they are looked at between
    /// scans (`checkHot`): a trainer saving every second leaves each save complete for about a second, and a
    /// watcher event delayed on a loaded machine must not cost one.
    private var hot: [String: (candidate: CheckpointCandidate, target: WatchTarget, until: Date)] = [:]
    /// How long a file rewritten in place stays hot after it last changed.
    static let hotSeconds = 30.0

    private struct Observation {
        var files: [FileStamp]
        var since: Date
        var registered: [FileStamp]?
        /// The size of a save in progress seen last (a single self-proving file found incomplete): a smaller file
        /// next means the trainer started the next save over it before it was complete.
        var partial: Int?
    }

    /// Folders seen unreadable at the last scan, with the reason (`report(unreadable:under:)`).
    private var unreadableFolders: [String: String] = [:]

    /// What one scan found.
    struct Outcome {
        /// Every folder looked into (for the watcher).
        var folders: [String] = []
        /// Candidates still changing (or too recently changed).
        var unsettled = 0
        /// Versions registered as new in this scan.
        var registered = 0
        /// Jobs queued in this scan.
        var queued = 0
        /// Whether files rewritten in place changed lately: `checkHot` should look at them again soon.
        var hot = false
    }

    init(
        configuration: DaemonConfiguration, store: any ResultStore, logger: Logger,
        clock: @escaping @Sendable () -> Date = SteadyClock.now
    ) {
        self.configuration = configuration
        self.store = store
        self.logger = logger
        self.clock = clock
        snapshots = SnapshotArea(folder: configuration.snapshotFolder, limit: configuration.snapshotLimit)
    }

    /// Scans every watched folder once.
    /// - Throws: `StoreError` when the store cannot be written (the scan is retried later; nothing is lost).
    func scan() async throws(StoreError) -> Outcome {
        var outcome = Outcome()
        var seen = Set<String>()
        for target in configuration.targets {
            let found = Discovery.scan(target.folder)
            outcome.folders += found.folders
            report(unreadable: found.unreadable, under: target.folder)
            let present = Set(found.candidates.map(\.path))
            // A watched folder that cannot be listed (an unmounted filesystem, a typo), or a folder in it that cannot
            // (permissions changed, an I/O error), says nothing about what is gone: nothing under it is marked gone
            // until every folder reads again; the worker notices a missing checkpoint when it needs it.
            let gone =
                found.folders.first == target.folder && found.unreadable.isEmpty
                ? try await store.markGone(under: target.folder, present: present) : []
            for gone in gone {
                logger.notice(
                    "checkpoint gone", metadata: ["checkpoint": "\(gone.path)", "run": "\(gone.run)"])
                if gone.snapshot != nil, let copy = try await store.releaseSnapshot(checkpoint: gone.id) {
                    snapshots.remove(copy)
                }
            }
            // Newest first within each run: a long run seen for the first time then queues its latest checkpoint
            // first, and each version registers older than those before it, so no queued job's rank shifts.
            let newestFirst = found.candidates.sorted {
                ($0.name.step ?? -1, $1.path) > ($1.name.step ?? -1, $0.path)
            }
            for candidate in newestFirst {
                // A checkpoint belongs to the deepest watched folder that holds it.
                guard let owner = configuration.target(for: candidate.path), owner.folder == target.folder,
                    seen.insert(candidate.path).inserted
                else { continue }
                try await consider(candidate, target: target, outcome: &outcome)
            }
        }
        observations = observations.filter { seen.contains($0.key) }
        hot = hot.filter { seen.contains($0.key) && $0.value.until > clock() }
        outcome.hot = !hot.isEmpty
        return outcome
    }

    /// Logs each folder that cannot be read once (a warning naming the folder and the reason), and once more when it
    /// reads again: a scan every few seconds must not repeat the same line for ever.
    private func report(unreadable: [String: String], under root: String) {
        let before = unreadableFolders.filter { $0.key == root || $0.key.hasPrefix(root + "/") }
        for (folder, reason) in unreadable.sorted(by: { $0.key < $1.key }) where before[folder] != reason {
            logger.warning(
                "cannot read a folder under a watched folder; nothing under it is marked gone until it reads again",
                metadata: ["folder": "\(folder)", "reason": "\(reason)"])
            unreadableFolders[folder] = reason
        }
        for folder in before.keys.sorted() where unreadable[folder] == nil {
            logger.notice("a folder reads again", metadata: ["folder": "\(folder)"])
            unreadableFolders[folder] = nil
        }
    }

    /// Looks again at the files rewritten in place that changed lately, without a full scan: cheap enough to run
    /// several times a second while a trainer saves.
    func checkHot() async throws(StoreError) -> Outcome {
        var outcome = Outcome()
        for (path, entry) in hot.sorted(by: { $0.key < $1.key }) {
            guard entry.until > clock(),
                let files = Discovery.candidate(at: path, runFolder: entry.candidate.runFolder)?.files
            else {
                hot[path] = nil
                continue
            }
            var candidate = entry.candidate
            candidate.files = files
            try await consider(candidate, target: entry.target, outcome: &outcome)
        }
        outcome.hot = !hot.isEmpty
        return outcome
    }

    private func consider(_ candidate: CheckpointCandidate, target: WatchTarget, outcome: inout Outcome)
        async throws(StoreError)
    {
        let now = clock()
        // Quiet since the newest file's modification time on first sight (never later than now, for clocks that
        // disagree across a network filesystem), or since the scan that saw the files change.
        var observation =
            observations[candidate.path]
            ?? Observation(
                files: candidate.files, since: min(now, Date(timeIntervalSince1970: candidate.modified)),
                registered: nil)
        if observation.files != candidate.files {
            observation = Observation(
                files: candidate.files, since: now, registered: observation.registered, partial: observation.partial)
            if SnapshotArea.rewrittenInPlace(candidate) {
                hot[candidate.path] = (candidate, target, now.addingTimeInterval(Self.hotSeconds))
            }
        }
        observations[candidate.path] = observation
        if observation.registered == candidate.files { return }
        if now.timeIntervalSince(observation.since) < configuration.quietSeconds {
            // A single safetensors or zip file proves it is complete by its own structure: no need to wait.
            guard SnapshotArea.provesItself(candidate), try await isComplete(candidate, target: target) else {
                outcome.unsettled += 1
                return
            }
        }
        observations[candidate.path]?.partial = nil
        guard let sighting = try await sighting(of: candidate) else {
            // Changed while it was read: not quiescent after all.
            observations[candidate.path] = Observation(files: candidate.files, since: clock(), registered: nil)
            outcome.unsettled += 1
            return
        }
        let (record, isNew) = try await store.register(sighting)
        if let copy = sighting.snapshot, record.snapshot != copy { snapshots.remove(copy) }
        var metadata: Logger.Metadata = [
            "checkpoint": "\(candidate.path)", "run": "\(candidate.name.run)", "state": "\(record.state.rawValue)",
        ]
        if let step = record.step { metadata["step"] = "\(step)" }
        if let reason = record.reason { metadata["reason"] = "\(reason)" }
        if record.snapshot != nil { metadata["snapshot"] = "\(record.snapshot ?? "")" }
        if isNew {
            outcome.registered += 1
            logger.info(record.state == .current ? "checkpoint found" : "checkpoint not readable", metadata: metadata)
        }
        if record.state == .current {
            for settings in target.jobs {
                if let job = try await store.ensureJob(checkpoint: record.id, settings: settings) {
                    outcome.queued += 1
                    metadata["job"] = "\(job.id)"
                    metadata["task"] = "\(settings.task.rawValue)"
                    logger.info("job queued", metadata: metadata)
                }
            }
        }
        // Seen for good only once its jobs are queued: a store that failed between the registration and the queueing
        // (a full disk) must meet this sighting again on the next scan, or the version would never be evaluated. An
        // unreadable checkpoint is tried again on every scan: fixing permissions changes no stamp.
        if record.state != .unreadable { observations[candidate.path]?.registered = candidate.files }
    }

    /// Whether a self-proving file is complete now. A save in progress is remembered; when the next sighting is a
    /// smaller file, the next save began over it before it was seen complete, and it is recorded as `overwritten`
    /// (the gap in the run's steps is then explained).
    private func isComplete(_ candidate: CheckpointCandidate, target: WatchTarget) async throws(StoreError) -> Bool {
        let complete: Bool
        do { complete = Completeness.check(try CheckpointLocation.discover(candidate.path)) == .complete } catch {
            complete = false
        }
        let partial = observations[candidate.path]?.partial
        if let partial, candidate.size < partial {
            let sighting = Sighting(
                run: candidate.name.run, runFolder: candidate.runFolder, path: candidate.path, step: nil,
                scheme: candidate.name.scheme.rawValue, size: partial, modified: candidate.modified,
                contentHash: ContentHash.stand(in: candidate.files, prefix: "overwritten"), state: .overwritten,
                reason: "the next save began over this one after \(partial) bytes, before it was seen complete: it "
                    + "could not be evaluated (it was cut off, or complete for less time than a scan takes)")
            _ = try await store.register(sighting)
            logger.warning(
                "a save was overwritten before it was complete",
                metadata: ["checkpoint": "\(candidate.path)", "bytes": "\(partial)"])
        }
        observations[candidate.path]?.partial = complete ? nil : candidate.size
        return complete
    }

    /// A copy of a file rewritten in place; `nil` (and a log line) when the area cannot be written.
    private func take(_ candidate: CheckpointCandidate) -> SnapshotArea.Taken? {
        do {
            let taken = try snapshots.take(candidate)
            if taken == .full {
                logger.warning(
                    "the snapshot area is full: this version is evaluated from the file itself (raise --snapshot-limit)",
                    metadata: ["checkpoint": "\(candidate.path)", "limit": "\(ByteSize.format(snapshots.limit))"])
            }
            return taken
        } catch {
            logger.error("snapshot failed", metadata: ["checkpoint": "\(candidate.path)", "error": "\(error)"])
            return nil
        }
    }

    /// What the candidate's bytes say: complete (with its content hash), incomplete or invalid; `nil` when a file
    /// changed while it was hashed (or copied).
    private func sighting(of candidate: CheckpointCandidate) async throws(StoreError) -> Sighting? {
        // nanoGPT's ckpt.pt carries its step inside (iter_num); other names carry it in the name.
        var step = candidate.name.step
        func make(_ hash: String, _ state: CheckpointState, _ reason: String?) -> Sighting {
            Sighting(
                run: candidate.name.run, runFolder: candidate.runFolder, path: candidate.path,
                step: step, scheme: candidate.name.scheme.rawValue, size: candidate.size,
                modified: candidate.modified, contentHash: hash, state: state, reason: reason)
        }
        let location: CheckpointLocation
        do { location = try CheckpointLocation.discover(candidate.path) } catch {
            return make(ContentHash.stand(in: candidate.files, prefix: "invalid"), .invalid, error.description)
        }
        switch Completeness.check(location) {
        case .incomplete(let reason):
            return make(ContentHash.stand(in: candidate.files, prefix: "incomplete"), .incomplete, reason)
        case .invalid(let error):
            return make(ContentHash.stand(in: candidate.files, prefix: "invalid"), .invalid, error.description)
        case .unreadable(let reason):
            return make(ContentHash.stand(in: candidate.files, prefix: "unreadable"), .unreadable, reason)
        case .complete:
            // A restart finds the same files with the same stamps: reuse the hash instead of reading them again.
            if let live = try await store.liveVersion(path: candidate.path), live.state == .current,
                live.size == candidate.size, live.modified == candidate.modified
            {
                step = live.step
                return make(live.contentHash, .current, nil)
            }
            var copy: String?
            if SnapshotArea.rewrittenInPlace(candidate) {
                switch take(candidate) {
                case .copy(let path): copy = path
                case .changed: return nil
                case .full, nil: break
                }
            }
            // nanoGPT's ckpt.pt carries its step inside (iter_num); other names carry it in the name. Read from the
            // copy when there is one: the file itself may already hold the next save.
            if candidate.name.scheme == .nanoGPT,
                let checkpoint = try? CheckpointLocation.discover(
                    copy ?? candidate.path
                ).open()
            {
                step = checkpoint.extras["iter_num"]?.int
            }
            // The copy keeps the file's name (a folder's file) or stands for it (a lone file): the same hash.
            let hashed =
                copy.flatMap { path in
                    Discovery.candidate(at: path, runFolder: candidate.runFolder).map {
                        CheckpointCandidate(
                            path: path, runFolder: candidate.runFolder, name: candidate.name, files: $0.files)
                    }
                } ?? candidate
            do {
                guard let hash = try ContentHash.of(hashed) else {
                    copy.map(snapshots.remove)
                    return nil
                }
                var sighting = make(hash, .current, nil)
                sighting.snapshot = copy
                return sighting
            } catch {
                copy.map(snapshots.remove)
                return make(
                    ContentHash.stand(in: candidate.files, prefix: "unreadable"), .unreadable, error.description)
            }
        }
    }
}
