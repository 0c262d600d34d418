import Architecture
import Checkpoints
import Engine
import Evaluation
import Foundation
import Testing
import TestSupport

/// Tokens every fixture's vocabulary (64 or 96) holds, in an order no model has seen.
private func fixtureTokens(_ count: Int, seed: UInt64 = 11) -> [Int32] {
    var random = TestRandom(seed: seed)
    return random.tokens(count, below: 64).map { Int32($0) }
}

/// A fixture checkpoint bound with its own architecture, declared trained at `trained` tokens, so that a small grid
/// (`1x,2x,4x,8x`) stays inside learned position tables and the fixtures' lengths.
private func fixture(_ name: String, trained: Int) throws -> SweepCheckpoint {
    let path = Repository.model(name)
    let location = try CheckpointLocation.discover(path)
    let checkpoint = try location.open()
    let found = try LanguageModel.architecture(for: location, checkpoint: checkpoint)
    var architecture = found.architecture
    architecture.trainedLength = trained
    let model = try LanguageModel(
        architecture: architecture, checkpoint: checkpoint, location: location, ignoring: found.ignoredSuffixes)
    return SweepCheckpoint(model: model, path: path)
}

private func memoryData(_ tokens: [Int32], documentStarts: [Int] = [0]) -> EvaluationData {
    EvaluationData(
        reference: DataReference(path: "memory"), tokens: tokens, documentStarts: documentStarts,
        hasDocuments: documentStarts.count > 1)
}

/// The largest relative difference between two numbers of the same sign (0 when equal).
private func relative(_ a: Double, _ b: Double) -> Double {
    a == b ? 0 : abs(a - b) / max(abs(a), abs(b))
}

/// Runs `settings` on `checkpoint` with and without prefix sharing and checks every length's result against the
/// unshared one: perplexity, Σ NLL and every window's NLL within 1e-9 relative, the same buckets. Returns the
/// shared sweep's points.
@discardableResult
private func expectSameWithSharing(
    _ checkpoint: SweepCheckpoint, data: EvaluationData, settings: EvaluationSettings, threads: Int? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> [SweepPoint] {
    // Both sweeps at one thread count: it decides the row blocks, and sharing is exact for a given one.
    let (shared, unshared) = try KernelThreads.exclusive(threads: threads) {
        (
            try SweepRunner(settings: settings).run([checkpoint], data: data).points,
            try SweepRunner(settings: settings, sharesPrefixes: false).run([checkpoint], data: data).points
        )
    }
    #expect(shared.map(\.length) == unshared.map(\.length), sourceLocation: sourceLocation)
    var worst = 0.0
    for (a, b) in zip(shared, unshared) {
        guard let x = a.result, let y = b.result else {
            #expect(a.unsupported == b.unsupported, sourceLocation: sourceLocation)
            continue
        }
        #expect(y.sharedWindows == nil, sourceLocation: sourceLocation)
        #expect(x.tokens == y.tokens && x.windows.count == y.windows.count, sourceLocation: sourceLocation)
        worst = max(worst, relative(x.perplexity, y.perplexity), relative(x.nllSum, y.nllSum))
        for (u, v) in zip(x.windows, y.windows) {
            #expect(u.start == v.start && u.tokens == v.tokens, sourceLocation: sourceLocation)
            worst = max(worst, relative(u.nll, v.nll))
        }
        #expect(x.positions.map(\.tokens) == y.positions.map(\.tokens), sourceLocation: sourceLocation)
        for (u, v) in zip(x.positions, y.positions) { worst = max(worst, relative(u.meanNLL, v.meanNLL)) }
    }
    #expect(worst <= 1e-9, "largest relative difference \(worst)", sourceLocation: sourceLocation)
    return shared
}

@Suite("Prefix sharing in sweeps")
struct PrefixSharingTests {
    @Test(
        "Every prefix-stable position method gives each length's result within 1e-9 of running every window",
        arguments: [
            "gpt2", "mpt", "llama-gqa", "llama-yarn", "gpt_neox-partial", "bloom-8h", "opt", "spec-t5", "spec-fire",
            "spec-kerple-log", "spec-sandwich", "spec-sinusoidal-fairseq", "spec-rotary-window", "spec-nope",
            "nanogpt", "fairseq-alibi",
        ])
    func exactPerMethod(_ name: String) throws {
        let checkpoint = try fixture(name, trained: 32)
        #expect(checkpoint.model.scoresArePrefixStable)
        // 32…256 on a doubling grid; 2 × 256 targets plus a ragged end, so the last window of each length is short.
        let data = memoryData(fixtureTokens(2 * 256 + 38))
        let settings = EvaluationSettings(
            data: data.reference, lengths: try LengthGrid(parsing: "1x,2x,4x,8x"), resamples: 0)
        let points = try expectSameWithSharing(checkpoint, data: data, settings: settings)
        let supported = points.filter { $0.result != nil }
        // The longest supported length runs every window; each shorter one takes half of its windows (those starting
        // at multiples of twice its length) from the longer passes.
        #expect(supported.last?.result?.sharedWindows == nil)
        for point in supported.dropLast() {
            let windows = point.result!.windows.count
            #expect(point.result?.sharedWindows == (windows + 1) / 2, "\(name) at \(point.length)")
        }
    }

    @Test(
        "Sliding, last-half, BOS and per-document windows share exactly too",
        arguments: [
            (EvaluationProtocol.sliding(stride: 8), BOSPlacement.none, false),
            (.sliding(stride: 5), .first, false),
            (.lastHalf, .none, false),
            (.nonoverlapping, .first, false),
            (.nonoverlapping, .every, false),
            (.nonoverlapping, .none, true),
            (.sliding(stride: 16), .every, true),
        ])
    func exactPerProtocol(_ kind: EvaluationProtocol, _ bos: BOSPlacement, _ perDocument: Bool) throws {
        let tokens = fixtureTokens(700, seed: 3)
        let data = memoryData(tokens, documentStarts: perDocument ? [0, 90, 91, 300, 333, 512] : [0])
        let settings = EvaluationSettings(
            data: data.reference, lengths: try LengthGrid(parsing: "1x,2x,4x,8x"), evaluationProtocol: kind,
            bos: bos, bosToken: bos == .none ? nil : 1, perDocument: perDocument, resamples: 0)
        for name in ["mpt", "llama-gqa"] {
            let points = try expectSameWithSharing(try fixture(name, trained: 16), data: data, settings: settings)
            if case .sliding = kind, !perDocument {
                // A sliding window of L is the prefix of the window of 2L starting at the same token: nearly all of
                // them are shared.
                let at16 = try #require(points.first?.result)
                #expect((at16.sharedWindows ?? 0) * 10 >= at16.windows.count * 8, "\(name): \(at16.sharedWindows ?? 0)")
            }
        }
    }

    @Test(
        "Sharing stays exact at any thread count, where the row blocks split into other pieces",
        arguments: [1, 2, 3, 5])
    func exactAtThreads(_ threads: Int) throws {
        // Trained at 512: the lengths 512…2048 cross the 256- to 1,024-row pieces the thread count chooses.
        let checkpoint = try fixture("mpt", trained: 512)
        let data = memoryData(fixtureTokens(2 * 2048 + 77, seed: UInt64(threads)))
        let settings = EvaluationSettings(
            data: data.reference, lengths: try LengthGrid(parsing: "1x,2x,4x"), resamples: 0)
        let points = try expectSameWithSharing(checkpoint, data: data, settings: settings, threads: threads)
        #expect(points.dropLast().allSatisfy { $0.result?.sharedWindows == ($0.result!.windows.count + 1) / 2 })
    }

    @Test("Dynamic NTK, LongRoPE and xPos depend on the window length: their sweeps run every window")
    func notPrefixStable() throws {
        let data = memoryData(fixtureTokens(300))
        let settings = EvaluationSettings(
            data: data.reference, lengths: try LengthGrid(parsing: "1x,2x,4x"), resamples: 0)
        for name in ["llama-dynamic", "llama-longrope", "spec-xpos"] {
            let checkpoint = try fixture(name, trained: 16)
            #expect(!checkpoint.model.scoresArePrefixStable, "\(name)")
            let points = try SweepRunner(settings: settings).run([checkpoint], data: data).points
            #expect(points.allSatisfy { $0.result?.sharedWindows == nil }, "\(name)")
        }
    }

    @Test("Rotary extensions change the model with the length, so only the protocol's own series shares")
    func extensionsDoNotShare() throws {
        let data = memoryData(fixtureTokens(300))
        var settings = EvaluationSettings(
            data: data.reference, lengths: try LengthGrid(parsing: "1x,2x,4x"), resamples: 0)
        settings.extensions = [.linear, .yarn]
        let checkpoint = try fixture("llama-gqa", trained: 16)
        let runner = SweepRunner(settings: settings)
        let jobs = try runner.series(of: checkpoint)
        // The protocol's series runs longest first in its own places; the extensions keep their order.
        #expect(runner.evaluationOrder(jobs) == [2, 1, 0, 3, 4, 5, 6, 7, 8])
        let points = try runner.run([checkpoint], data: data).points
        #expect(points.map(\.length) == [16, 32, 64, 16, 32, 64, 16, 32, 64])
        for point in points {
            let shares = point.series == "nonoverlapping" && point.length < 64
            #expect((point.result?.sharedWindows != nil) == shares, "\(point.series) at \(point.length)")
        }
    }

    @Test("Sharing is prepared for one cut of the data: another plan at the same length takes nothing")
    func otherPlanTakesNothing() throws {
        let model = try fixture("mpt", trained: 32).model
        let tokens = fixtureTokens(400)
        let sharing = try PrefixSharing(
            model: model, lengths: [32, 64], count: tokens.count, documentStarts: [0],
            options: { WindowOptions(length: $0) })
        _ = try KernelThreads.exclusive {
            try Evaluator.evaluate(model: model, tokens: tokens, options: WindowOptions(length: 64), sharing: sharing)
        }
        #expect(sharing.covered(length: 32) == 7)
        // The same length over fewer tokens is another plan: every window runs, and the result is the plain one.
        let shorter = Array(tokens.prefix(300))
        // Both passes under one thread count: compared bit for bit, a count another test sets between them would
        // split the rows differently.
        let (result, plain) = try KernelThreads.exclusive {
            (
                try Evaluator.evaluate(
                    model: model, tokens: shorter, options: WindowOptions(length: 32), sharing: sharing),
                try Evaluator.evaluate(model: model, tokens: shorter, options: WindowOptions(length: 32))
            )
        }
        #expect(result.sharedWindows == nil && result.nllSum == plain.nllSum)
    }
}
