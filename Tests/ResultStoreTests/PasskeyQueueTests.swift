import Evaluation
import Foundation
import GRDB
import TestSupport
import Testing

@testable import ResultStore

/// Passkey jobs beside perplexity jobs in one queue, and a store written before passkey existed.
@Suite struct PasskeyQueue {
    let passkey = settings.passkeyJob(PasskeySettings(depths: [0, 50], trials: 3, bytes: true))

    @Test(
        "Every perplexity job is handed out before any passkey job, newest checkpoint first within each task",
        arguments: StoreKind.allCases)
    func perplexityFirst(kind: StoreKind) async throws {
        let scratch = try ScratchFolder("passkey-queue")
        defer { scratch.remove() }
        let store = try await kind.make(scratch)
        var versions: [CheckpointRecord] = []
        for step in [1, 2, 3] {
            let version = try await store.register(
                sighting("/runs/alibi/step-\(step).safetensors", step: step, hash: "xxh64:\(step)")
            ).record
            // Each version's passkey job is queued with (here: even before) its perplexity job.
            #expect(try await store.ensureJob(checkpoint: version.id, settings: passkey) != nil)
            #expect(try await store.ensureJob(checkpoint: version.id, settings: settings) != nil)
            versions.append(version)
        }
        #expect(try await store.ensureJob(checkpoint: versions[0].id, settings: passkey) == nil, "once per settings")
        var order: [(EvaluationTask, Int?)] = []
        while let claimed = try await store.claim(worker: "w", leaseSeconds: 60) {
            order.append((claimed.job.settings.task, claimed.checkpoint.step))
            try await store.finish(claimed.lease, state: .done, error: nil, attempts: 0, retrySeconds: nil)
        }
        #expect(order.map(\.0) == [.perplexity, .perplexity, .perplexity, .passkey, .passkey, .passkey])
        #expect(order.map(\.1) == [3, 2, 1, 3, 2, 1])
        #expect(Set(try await store.status().jobs.map(\.settingsHash)).count == 2)
    }

    @Test("A store written before passkey jobs (migration v4) upgrades: its queue, jobs and results stay")
    func upgradesAnOlderStore() async throws {
        let scratch = try ScratchFolder("passkey-migration")
        defer { scratch.remove() }
        let path = scratch.path("results.sqlite")
        // The store as the previous version left it: migrations up to v4, a version, a pending job, a result.
        do {
            let old = try DatabaseQueue(path: path)
            try SQLiteStore.migrator.migrate(old, upTo: "v4: the queue's order stored in an index")
            try await old.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO checkpoints(id, run, run_folder, path, step, scheme, size, modified, content_hash,
                            state, discovered, updated)
                        VALUES (1, 'alibi', '/runs/alibi', '/runs/alibi/step-1.safetensors', 1, 'step-N.safetensors',
                            10, 1, 'xxh64:1', 'current', 1, 1)
                        """)
                let json = String(decoding: try JSONEncoder().encode(settings), as: UTF8.self)
                try db.execute(
                    sql: """
                        INSERT INTO jobs(id, checkpoint_id, settings, settings_hash, state, created, updated, rank)
                        VALUES (1, 1, ?, ?, 'pending', 1, 1, 0)
                        """, arguments: [json, settings.contentHash])
                let stored = result("xxh64:1", length: 64)
                let point = String(decoding: try JSONEncoder().encode(stored.point), as: UTF8.self)
                try db.execute(
                    sql: """
                        INSERT INTO results(key, content_hash, architecture_hash, scoring_hash, engine_version, series,
                            length, outcome, protocol, perplexity, started, finished, point)
                        VALUES (?, 'xxh64:1', 'sha256:a', 'sha256:s', 'engine-1', 'nonoverlapping', 64, 'evaluated',
                            'nonoverlapping', 5, 1, 1, ?)
                        """, arguments: [stored.key, point])
            }
        }
        let store = try SQLiteStore(writingTo: path)
        #expect(try await store.results(forKeys: [result("xxh64:1", length: 64).key]).count == 1)
        #expect(try await store.ensureJob(checkpoint: 1, settings: passkey) != nil)
        let first = try #require(try await store.claim(worker: "w", leaseSeconds: 60))
        #expect(first.job.id == 1 && first.job.settings.task == .perplexity, "the old job keeps its place")
        try await store.finish(first.lease, state: .done, error: nil, attempts: 0, retrySeconds: nil)
        let second = try #require(try await store.claim(worker: "w", leaseSeconds: 60))
        #expect(second.job.settings.task == .passkey && second.job.settings.passkey?.trials == 3)
    }
}
