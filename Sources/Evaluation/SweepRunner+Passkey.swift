import Engine
import Foundation

/// Passkey retrieval for a caller that stores results cell by cell (the daemon's passkey jobs): the cells of one
/// checkpoint, each checked against a memory limit and handed over as it ends, like `evaluate(_:except:…)` does for
/// perplexity.
extension SweepRunner {
    /// One cell to run: a series at a length (the `Job`, with the model scaled for it) and a depth.
    public struct PasskeyCell: Sendable {
        public var job: Job
        public var depth: Double
    }

    /// Every (series, length, depth) of `checkpoint` in the order `passkey` lists them: the model as it is, then each
    /// of the settings' rotary extensions; each length; each depth.
    /// - Throws: `EvaluationError.invalidOptions` when extensions are asked of a model without rotary layers.
    public func passkeyCells(of checkpoint: SweepCheckpoint, passkey: PasskeySettings) throws(EvaluationError)
        -> [PasskeyCell]
    {
        let model = checkpoint.model
        let lengths = settings.lengths.resolve(trainedLength: model.architecture.trainedLength)
        var cells: [PasskeyCell] = []
        for series in try PasskeyResult.series(
            of: model, checkpoint: checkpoint.summary.checkpoint, extensions: settings.extensions)
        {
            for length in lengths {
                let job = Job(
                    checkpoint: checkpoint, series: series.name, length: length, model: series.modelAt(length))
                cells += passkey.depths.map { PasskeyCell(job: job, depth: $0) }
            }
        }
        return cells
    }

    /// Runs `cells` but the indices in `done`, in order. A cell whose memory estimate exceeds `memoryLimit`, or that
    /// runs out of memory, is `skipped`; one the model cannot represent (or too short for the prompt) is
    /// `unsupported`. Each ends as a `LengthResult` whose point carries the cell (`SweepPoint.passkey`).
    /// - Parameters:
    ///   - compute: runs a cell and returns its outcome, or `nil` to stop (a shutdown abandoning it).
    ///   - record: receives each cell as it ends; returns `false` to stop.
    /// - Returns: whether every cell was run (`false`: stopped).
    public func evaluatePasskey(
        _ cells: [PasskeyCell], except done: Set<Int>, passkey: PasskeySettings, encoding: Passkey.Encoding,
        memoryLimit: Int?,
        compute: (@escaping @Sendable () -> Result<PasskeyResult.Cell, any Error>) async -> Result<
            PasskeyResult.Cell, any Error
        >?,
        record: (LengthResult) async throws -> Bool
    ) async throws -> Bool {
        for (index, cell) in cells.enumerated() where !done.contains(index) {
            let job = cell.job
            var result = LengthResult(
                index: index, job: job, point: unsupportedPoint(job, reason: ""), outcome: .evaluated,
                started: Date())
            let (estimate, overLimit) = Self.memoryCheck(job.model, length: job.length, limit: memoryLimit)
            var outcome: PasskeyResult.Cell
            if let reason = overLimit {
                (result.outcome, result.reason, result.memoryEstimate) = (.skipped, reason, estimate)
                outcome = PasskeyResult.Cell.notRun(job: job, depth: cell.depth, reason: reason)
            } else {
                guard
                    let computed = await compute({
                        Result {
                            try PasskeyResult.cell(
                                series: job.series, length: job.length, depth: cell.depth, model: job.model,
                                encoding: encoding, trials: passkey.trials, seed: passkey.seed)
                        }
                    })
                else { return false }
                switch computed {
                case .success(let ran):
                    outcome = ran
                    if let skipped = ran.skipped { (result.outcome, result.reason) = (.unsupported, skipped) }
                case .failure(let error):
                    guard case .outOfMemory(let what) = error as? EngineError else { throw error }
                    let reason = "out of memory: \(what)"
                    (result.outcome, result.reason, result.memoryEstimate) = (.skipped, reason, estimate)
                    outcome = PasskeyResult.Cell.notRun(job: job, depth: cell.depth, reason: reason)
                }
            }
            result.point = unsupportedPoint(job, reason: result.reason ?? "")
            if result.outcome == .evaluated { result.point.unsupported = nil }
            result.point.tokens = outcome.trials.reduce(0) { $0 + $1.length }
            (outcome.seed, outcome.tokenizer) = (passkey.seed, encoding.name)
            result.point.passkey = outcome
            guard try await record(result) else { return false }
        }
        return true
    }
}

extension PasskeyResult.Cell {
    /// A cell that did not run, and why.
    static func notRun(job: SweepRunner.Job, depth: Double, reason: String) -> PasskeyResult.Cell {
        PasskeyResult.Cell(
            series: job.series, length: job.length, depth: depth, retrieved: 0, accuracy: 0, lower: 0, upper: 1,
            keyLogProbability: nil, trials: [], skipped: reason, tokensPerSecond: 0)
    }
}
