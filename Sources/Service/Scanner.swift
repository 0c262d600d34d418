import Checkpoints
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

    private struct Observation {
        var files: [FileStamp]
        var since: Date
        var registered: [FileStamp]?
    }

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
    }

    init(
        configuration: DaemonConfiguration, store: any ResultStore, logger: Logger,
        clock: @escaping @Sendable () -> Date = Date.init
    ) {
        self.configuration = configuration
        self.store = store
        self.logger = logger
        self.clock = clock
    }

    /// Scans every watched folder once.
    /// - Throws: `StoreError` when the store cannot be written (the scan is retried later; nothing is lost).
    func scan() throws(StoreError) -> Outcome {
        var outcome = Outcome()
        var seen = Set<String>()
        for target in configuration.targets {
            let found = Discovery.scan(target.folder)
            outcome.folders += found.folders
            let present = Set(found.candidates.map(\.path))
            // A watched folder that cannot be listed (an unmounted filesystem, a typo) says nothing about what is
            // gone; the worker notices a missing checkpoint when it needs it.
            let gone =
                found.folders.first == target.folder
                ? try store.markGone(under: target.folder, present: present, at: clock()) : []
            for gone in gone {
                logger.notice(
                    "checkpoint gone", metadata: ["checkpoint": "\(gone.path)", "run": "\(gone.run)"])
            }
            for candidate in found.candidates {
                // A checkpoint belongs to the deepest watched folder that holds it.
                guard let owner = configuration.target(for: candidate.path), owner.folder == target.folder,
                    seen.insert(candidate.path).inserted
                else { continue }
                try consider(candidate, target: target, outcome: &outcome)
            }
        }
        observations = observations.filter { seen.contains($0.key) }
        return outcome
    }

    private func consider(_ candidate: CheckpointCandidate, target: WatchTarget, outcome: inout Outcome)
        throws(StoreError)
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
            observation = Observation(files: candidate.files, since: now, registered: observation.registered)
        }
        observations[candidate.path] = observation
        if observation.registered == candidate.files { return }
        guard now.timeIntervalSince(observation.since) >= configuration.quietSeconds else {
            outcome.unsettled += 1
            return
        }
        guard let sighting = try sighting(of: candidate) else {
            // Changed while it was read: not quiescent after all.
            observations[candidate.path] = Observation(files: candidate.files, since: clock(), registered: nil)
            outcome.unsettled += 1
            return
        }
        let (record, isNew) = try store.register(sighting, at: clock())
        // An unreadable checkpoint is tried again on every scan: fixing permissions changes no stamp.
        if record.state != .unreadable { observations[candidate.path]?.registered = candidate.files }
        var metadata: Logger.Metadata = [
            "checkpoint": "\(candidate.path)", "run": "\(candidate.name.run)", "state": "\(record.state.rawValue)",
        ]
        if let step = candidate.name.step { metadata["step"] = "\(step)" }
        if let reason = record.reason { metadata["reason"] = "\(reason)" }
        if isNew {
            outcome.registered += 1
            logger.info(record.state == .current ? "checkpoint found" : "checkpoint not readable", metadata: metadata)
        }
        guard record.state == .current else { return }
        if let job = try store.ensureJob(checkpoint: record.id, settings: target.settings, at: clock()) {
            outcome.queued += 1
            metadata["job"] = "\(job.id)"
            logger.info("job queued", metadata: metadata)
        }
    }

    /// What the candidate's bytes say: complete (with its content hash), incomplete or invalid; `nil` when a file
    /// changed while it was hashed.
    private func sighting(of candidate: CheckpointCandidate) throws(StoreError) -> Sighting? {
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
            if candidate.name.scheme == .nanoGPT, let checkpoint = try? location.open() {
                step = checkpoint.extras["iter_num"]?.int
            }
            // A restart finds the same files with the same stamps: reuse the hash instead of reading them again.
            if let live = try store.liveVersion(path: candidate.path), live.state == .current,
                live.size == candidate.size, live.modified == candidate.modified
            {
                return make(live.contentHash, .current, nil)
            }
            do {
                guard let hash = try ContentHash.of(candidate) else { return nil }
                return make(hash, .current, nil)
            } catch {
                return make(
                    ContentHash.stand(in: candidate.files, prefix: "unreadable"), .unreadable, error.description)
            }
        }
    }
}
