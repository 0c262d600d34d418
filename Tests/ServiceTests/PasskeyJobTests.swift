import Engine
import Evaluation
import Foundation
import Reports
import ResultStore
import TestSupport
import Testing

@testable import Service

/// The daemon's passkey jobs: configured per run, queued after perplexity, each cell stored once and equal to what
/// `extrapolate passkey` computes, refused clearly when no tokenizer is known.
@Suite struct DaemonPasskey {
    /// Demo probes (trained at 64 bytes): the prompt without filler takes 247 bytes, so 4x (256) is the shortest
    /// length a cell runs at; 1x is recorded as not runnable.
    func overrides(trials: Int = 2) -> EvaluationOverrides {
        var o = EvaluationOverrides()
        o.data = Repository.kjvValidation
        o.lengths = try? LengthGrid(parsing: "1x,4x")
        o.budget = 256
        o.resamples = 0
        o.tasks = [.perplexity, .passkey]
        o.passkeyBytes = true
        o.passkeyTrials = trials
        o.passkeyDepths = [0, 100]
        return o
    }

    func configuration(_ runs: String, _ overrides: EvaluationOverrides) throws -> DaemonConfiguration {
        var configuration = try DaemonConfiguration(folders: [runs], overrides: overrides)
        configuration.quietSeconds = 0
        return configuration
    }

    @Test(
        "tasks = perplexity, passkey: a passkey job per checkpoint, after every perplexity job; each cell stored once, equal to `extrapolate passkey`'s; a second pass computes nothing; other trials are other results"
    )
    func passkeyJobsEndToEnd() async throws {
        let scratch = try ScratchFolder("daemon-passkey")
        defer { scratch.remove() }
        let runs = try scratch.demoRuns(methods: ["alibi"], steps: [500, 1000])
        let store = MemoryStore()
        let configuration = try configuration(runs, overrides())
        _ = try await Scanner(configuration: configuration, store: store, logger: .quiet).scan()
        let queued = try await store.status().jobs
        #expect(
            queued.map(\.settings.task).sorted { $0.rawValue > $1.rawValue } == [
                .perplexity, .perplexity, .passkey, .passkey,
            ])

        let summary = try await Daemon(configuration: configuration, store: store, logger: .quiet, once: true).runOnce()
        #expect(summary.pending == 0)
        let jobs = try await store.status().jobs
        #expect(jobs.allSatisfy { $0.state == .done }, "\(jobs.map { ($0.state, $0.error ?? "") })")
        // Perplexity ran first: every perplexity job ended before any passkey job did.
        let lastPerplexity = jobs.filter { $0.settings.task == .perplexity }.map(\.updated).max()!
        let firstPasskey = jobs.filter { $0.settings.task == .passkey }.map(\.updated).min()!
        #expect(lastPerplexity <= firstPasskey)

        let rows = try await store.results(run: nil).map(StoredResultsReport.Row.init)
        let passkey = StoredPasskeyReport(rows)
        #expect(passkey.rows.count == 2 * 2 * 2, "2 checkpoints × 2 lengths × 2 depths")
        #expect(StoredResultsReport(rows: rows).perplexityRows.count == 2 * 2)
        // 1x cannot hold the prompt: recorded, with the reason, not run.
        for row in passkey.rows where row.length == 64 {
            #expect(row.outcome == .unsupported && row.reason?.contains("247 tokens") == true)
        }
        // Each stored cell is what `extrapolate passkey` computes for that checkpoint, trial by trial.
        let step1000 = try #require(passkey.results.first { $0.step == 1000 })
        let model = try LanguageModel.load(runs + "/alibi/step-1000.safetensors")
        let direct = try PasskeyResult.run(
            model: model, checkpoint: "x", encoding: .bytes, lengths: try LengthGrid(parsing: "4x"), extensions: [],
            depths: [0, 100], trials: 2, seed: 0)
        for cell in direct.cells {
            let stored = try #require(
                step1000.result.cells.first { $0.length == cell.length && $0.depth == cell.depth })
            #expect(stored.trials.map(\.keyLogProbability) == cell.trials.map(\.keyLogProbability))
            #expect(stored.trials.map(\.key) == cell.trials.map(\.key) && stored.retrieved == cell.retrieved)
            #expect(stored.seed == 0 && stored.tokenizer == "bytes")
        }

        // Again: everything is stored, nothing is computed.
        let counted = try await store.counts().results
        _ = try await Daemon(configuration: configuration, store: store, logger: .quiet, once: true).runOnce()
        #expect(try await store.counts().results == counted)

        // Three trials are other settings: a new passkey job per checkpoint, and new cells.
        let more = try self.configuration(runs, overrides(trials: 3))
        _ = try await Daemon(configuration: more, store: store, logger: .quiet, once: true).runOnce()
        let after = try await store.status().jobs
        #expect(after.filter { $0.settings.passkey?.trials == 3 && $0.state == .done }.count == 2)
        #expect(try await store.counts().results == counted + 8, "the perplexity results are shared, the cells are not")
    }

    @Test("Passkey retrieval alone needs no evaluation data; perplexity without data is refused, naming both ways")
    func passkeyAloneNeedsNoData() async throws {
        let scratch = try ScratchFolder("daemon-passkey-alone")
        defer { scratch.remove() }
        let runs = try scratch.demoRuns(methods: ["rotary"], steps: [500])
        var o = overrides()
        o.data = nil
        o.tasks = [.passkey]
        let configuration = try configuration(runs, o)
        #expect(configuration.startProblem == nil)
        let store = MemoryStore()
        _ = try await Daemon(configuration: configuration, store: store, logger: .quiet, once: true).runOnce()
        let jobs = try await store.status().jobs
        #expect(jobs.count == 1 && jobs[0].settings.task == .passkey && jobs[0].state == .done)
        #expect(try await store.counts().results == 2 * 2)
        o.tasks = [.perplexity, .passkey]
        #expect {
            _ = try self.configuration(runs, o)
        } throws: { "\($0)".contains("no evaluation data; give --data") && "\($0)".contains("--tasks passkey") }
    }

    @Test(
        "A passkey job without a tokenizer fails naming the missing tokenizer.json and what to give; perplexity is done"
    )
    func missingTokenizer() async throws {
        let scratch = try ScratchFolder("daemon-passkey-tokenizer")
        defer { scratch.remove() }
        let runs = try scratch.demoRuns(methods: ["alibi"], steps: [500])
        var o = overrides()
        o.passkeyBytes = nil
        let store = MemoryStore()
        _ = try await Daemon(configuration: try configuration(runs, o), store: store, logger: .quiet, once: true)
            .runOnce()
        let jobs = try await store.status().jobs
        let failed = try #require(jobs.first { $0.settings.task == .passkey })
        #expect(failed.state == .failed)
        #expect(failed.error?.contains("no tokenizer.json beside the checkpoint") == true)
        #expect(failed.error?.contains("passkey-bytes = true") == true)
        #expect(jobs.first { $0.settings.task == .perplexity }?.state == .done)
    }

    @Test("The configuration file's tasks and passkey keys, per run over [evaluation]; bad values name their key")
    func configurationKeys() throws {
        let scratch = try ScratchFolder("passkey-config")
        defer { scratch.remove() }
        let file = scratch.path("watch.toml")
        func load(_ text: String) throws -> DaemonConfiguration {
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            return try DaemonConfiguration.load(file: file)
        }
        let configuration = try load(
            """
            [evaluation]
            data = "/data/valid.tokens.zst"
            tasks = ["perplexity", "passkey"]
            passkey-depths = [0, 12.5, 100]
            passkey-trials = 4
            passkey-tokenizer = "tok/tokenizer.json"

            [[runs]]
            folder = "/runs/alibi"

            [[runs]]
            folder = "/runs/probe"
            tasks = ["passkey"]
            passkey-bytes = true
            passkey-seed = 7
            """)
        let (alibi, probe) = (configuration.targets[0], configuration.targets[1])
        #expect(alibi.jobs.map(\.task) == [.perplexity, .passkey])
        #expect(alibi.passkey.depths == [0, 12.5, 100] && alibi.passkey.trials == 4)
        #expect(alibi.passkey.tokenizer == scratch.path("tok/tokenizer.json") && !alibi.passkey.bytes)
        #expect(probe.jobs.map(\.task) == [.passkey])
        #expect(probe.passkey.bytes && probe.passkey.tokenizer == nil && probe.passkey.seed == 7)
        #expect(probe.jobs[0].passkey?.trials == 4, "the run's own keys over [evaluation]'s")
        // A passkey job's settings are not its perplexity sibling's.
        #expect(Set(alibi.jobs.map(\.contentHash)).count == 2)

        for (text, expected) in [
            ("tasks = [\"ppl\"]", "runs[1].tasks: takes perplexity and passkey, found 'ppl'"),
            ("passkey-depths = [0, 120]", "runs[1].passkey-depths: each must be from 0.0 to 100.0, found 120.0"),
            ("passkey-trials = 0", "runs[1].passkey-trials: must be at least 1"),
        ] {
            do {
                _ = try load(
                    """
                    [evaluation]
                    data = "/data/valid.tokens.zst"
                    [[runs]]
                    folder = "/runs/alibi"
                    \(text)
                    """)
                Issue.record("accepted \(text)")
            } catch {
                #expect("\(error)".contains(expected), "\(error)")
            }
        }
    }
}
