import Checkpoints
import Engine
import Foundation
import Kernels

/// A loaded checkpoint ready for a sweep.
public struct SweepCheckpoint: Sendable {
    public var model: LanguageModel
    public var summary: CheckpointSummary

    /// `model`, loaded from `path`; run and step are read from the path's name (or, for a name without one such as
    /// nanoGPT's `ckpt.pt`, from the step the file records) unless `name` is given.
    public init(model: LanguageModel, path: String, name: CheckpointName? = nil) {
        self.model = model
        var read = CheckpointName(path: path)
        if read.step == nil { read.step = model.recordedStep }
        summary = CheckpointSummary(
            checkpoint: path, name: name ?? read, architecture: model.architecture.name,
            architectureHash: model.architecture.contentHash,
            trainedLength: model.architecture.trainedLength, trainedLengthSource: model.trainedLength.provenance)
        summary.precision = model.precision
        if let audit = model.configAudit, !audit.unread.isEmpty {
            summary.configNotRead = audit.recorded
            summary.configWarning = audit.warning
        }
    }

    /// Loads the checkpoint at `path` (bound with `architectureFile` when given, trained at `trainedLength` when
    /// given: `EvaluationSettings.trainedLength`; accepting config keys that change the model but are not read when
    /// `allowUnknownConfigKeys`).
    /// `precision`: the arithmetic of the products (`EvaluationSettings.precision`); `nil`, `LanguageModel.precision`.
    public static func load(
        _ path: String, architectureFile: String? = nil, trainedLength: Int? = nil,
        allowUnknownConfigKeys: Bool = false, precision: Precision? = nil,
        name: CheckpointName? = nil
    ) throws(EvaluationError) -> SweepCheckpoint {
        do {
            let model = try LanguageModel.load(
                path, architectureFile: architectureFile, trainedLength: trainedLength,
                allowUnknownConfigKeys: allowUnknownConfigKeys, precision: precision)
            return SweepCheckpoint(model: model, path: path, name: name)
        } catch { throw .engine(error) }
    }
}

/// Runs sweeps: every checkpoint at every length of the grid (resolved against its own trained length), on the same
/// span of tokens, with each rotary extension asked for as an extra series. The CLI's `sweep` and the daemon both
/// evaluate through it.
///
/// Where it is exact (`LanguageModel.scoresArePrefixStable`), a series' lengths run longest first and each shorter
/// length takes the windows a longer pass already covered (`PrefixSharing`); the numbers are those of running every
/// window.
public struct SweepRunner: Sendable {
    public var settings: EvaluationSettings
    /// Take shorter lengths' windows from longer passes where that is exact (on by default; off only to measure it).
    public var sharesPrefixes: Bool

    public init(settings: EvaluationSettings, sharesPrefixes: Bool = true) {
        self.settings = settings
        self.sharesPrefixes = sharesPrefixes
    }

    /// Progress of a sweep: the fraction done (weighted by cost) and what is running.
    public struct Progress: Sendable {
        public var fraction: Double
        public var label: String
    }

    /// The longest window any of `checkpoints` will be run at.
    public func longest(_ checkpoints: [SweepCheckpoint]) -> Int {
        checkpoints.map { settings.lengths.resolve(trainedLength: $0.summary.trainedLength).max() ?? 2 }.max() ?? 2
    }

    /// What a run will score, in one line for people: targets per length, lengths, tokens in all, and the windows of
    /// the longest length (a warning when fewer than `Bootstrap.reliableUnits`).
    public func plan(_ checkpoints: [SweepCheckpoint], data: EvaluationData) -> String {
        let memory = checkpoints.map { checkpoint in
            let length = settings.lengths.resolve(trainedLength: checkpoint.summary.trainedLength).max() ?? 2
            return
                "\n\(checkpoint.summary.checkpoint): \(checkpoint.model.memorySummary(length: length, threads: Kernels.threads))"
        }
        return windowsPlan(checkpoints, data: data) + memory.joined()
    }

    private func windowsPlan(_ checkpoints: [SweepCheckpoint], data: EvaluationData) -> String {
        let lengths = checkpoints.reduce(0) {
            $0 + settings.lengths.resolve(trainedLength: $1.summary.trainedLength).count
        }
        let series = 1 + settings.extensions.count
        let longest = longest(checkpoints)
        var line =
            "scoring \(data.targets.formatted()) targets at each of \(lengths * series) (checkpoint, series, length) "
            + "pairs: \((data.targets * lengths * series).formatted()) predictions"
        // Options the runner refuses later (a stride past the length) plan no windows here; the run says why.
        guard
            let windows = try? WindowPlan.windows(
                count: data.tokens.count, documentStarts: data.documentStarts,
                options: settings.windowOptions(length: longest)
            ).count
        else { return line }
        line += "; \(windows) windows at the longest length, \(longest)"
        if windows < Bootstrap.reliableUnits {
            line +=
                " (fewer than \(Bootstrap.reliableUnits): its interval is flagged; the data or --budget allows no more)"
        }
        return line
    }

    /// Evaluates every checkpoint (sorted by run, then step) on `data`.
    /// - Throws: `EvaluationError` when an option does not fit a checkpoint (extensions without rotary) or a pass fails.
    public func run(
        _ checkpoints: [SweepCheckpoint], data: EvaluationData, progress: ((Progress) -> Void)? = nil
    ) throws(EvaluationError) -> SweepResult {
        let ordered = checkpoints.sorted { $0.summary.name < $1.summary.name }
        for checkpoint in ordered {
            try data.checkCompatible(with: checkpoint.model, checkpoint: checkpoint.summary.checkpoint)
        }
        var perCheckpoint: [[Job]] = []
        for checkpoint in ordered { perCheckpoint.append(try series(of: checkpoint)) }
        let jobs = perCheckpoint.flatMap { $0 }
        // Cost per scored token grows like (projections) + (attention ∝ length); weigh lengths accordingly.
        func weight(_ length: Int) -> Double { 1 + Double(length) / 2048 }
        let total = jobs.reduce(0.0) { $0 + weight($1.length) }
        var done = 0.0
        var points: [SweepPoint] = []
        for checkpointJobs in perCheckpoint {
            let sharing = try prefixSharing(for: checkpointJobs, data: data)
            var evaluated: [(index: Int, point: SweepPoint)] = []
            for index in evaluationOrder(checkpointJobs) {
                let job = checkpointJobs[index]
                let label = "\(job.checkpoint.summary.label) \(job.series) at \(job.length)"
                let point = try evaluate(job, data: data, sharing: sharing) { windows, of in
                    progress?(
                        Progress(
                            fraction: (done + weight(job.length) * Double(windows) / Double(of)) / total, label: label))
                }
                evaluated.append((index, point))
                done += weight(job.length)
            }
            points += evaluated.sorted { $0.index < $1.index }.map(\.point)
        }
        return SweepResult(
            settings: settings, data: data.reference, targets: data.targets,
            checkpoints: ordered.map(\.summary), points: points)
    }

    /// One (checkpoint, series, length) to evaluate, with the model to run: the checkpoint's own, or a copy with a
    /// rotary extension.
    public struct Job: Sendable {
        public var checkpoint: SweepCheckpoint
        public var series: String
        public var length: Int
        public var model: LanguageModel
    }

    /// Every (series, length) of `checkpoint`, in the order a sweep evaluates them: the protocol's series at every
    /// length, then each rotary extension's.
    /// - Throws: `EvaluationError.invalidOptions` when extensions are asked of a model without rotary layers.
    public func series(of checkpoint: SweepCheckpoint) throws(EvaluationError) -> [Job] {
        let model = checkpoint.model
        let trained = model.architecture.trainedLength
        let lengths = settings.lengths.resolve(trainedLength: trained)
        var jobs = lengths.map {
            Job(checkpoint: checkpoint, series: settings.evaluationProtocol.description, length: $0, model: model)
        }
        for fix in settings.extensions {
            for length in lengths {
                // `nil` only when the model has no rotary layer to extend.
                guard
                    let scaled = model.replacingRotaryScaling({ _ in
                        fix.scaling(factor: Double(length) / Double(trained), trainedLength: trained)
                    })
                else {
                    throw .invalidOptions(
                        "\(checkpoint.summary.checkpoint): --extensions applies to rotary models, and "
                            + "\(model.architecture.name) has no rotary layer; drop --extensions")
                }
                jobs.append(Job(checkpoint: checkpoint, series: fix.rawValue, length: length, model: scaled))
            }
        }
        return jobs
    }

    /// Whether `job` may share windows with the other lengths of its series: its series is the protocol's (run
    /// with the checkpoint's own model, the same at every length; an extension's model changes with the length)
    /// and the model's scores are prefix-stable.
    func canShare(_ job: Job) -> Bool {
        sharesPrefixes && job.series == settings.evaluationProtocol.description && job.model === job.checkpoint.model
            && job.model.scoresArePrefixStable
    }

    /// The order to evaluate `jobs` (one checkpoint's, as `series(of:)` lists them) in, as indices: the jobs that
    /// can share windows longest first, in the places they held; every other job where it was.
    public func evaluationOrder(_ jobs: [Job]) -> [Int] {
        let sharing = jobs.indices.filter { canShare(jobs[$0]) }
        guard sharing.count > 1 else { return Array(jobs.indices) }
        var order = Array(jobs.indices)
        let longestFirst = sharing.sorted { jobs[$0].length > jobs[$1].length }
        for (slot, index) in zip(sharing, longestFirst) { order[slot] = index }
        return order
    }

    /// Prefix sharing among the lengths of `jobs` (one checkpoint's) that can share, or `nil` when fewer than two
    /// can. Evaluate them in `evaluationOrder(jobs)` and pass it to each `evaluate`.
    /// - Throws: `EvaluationError.invalidOptions` when a length's windows cannot be cut.
    public func prefixSharing(for jobs: [Job], data: EvaluationData) throws(EvaluationError) -> PrefixSharing? {
        let sharing = jobs.filter(canShare)
        let lengths = Set(sharing.map(\.length))
        guard lengths.count > 1, let model = sharing.first?.model else { return nil }
        return try PrefixSharing(
            model: model, lengths: Array(lengths), count: data.tokens.count, documentStarts: data.documentStarts,
            options: settings.windowOptions(length:))
    }

    /// Evaluates one (checkpoint, series, length) on `data`: a point with its interval, or an unsupported point when
    /// the position method cannot represent the length. `progress` receives (windows done, windows).
    /// - Parameter sharing: from `prefixSharing(for:data:)`; used only when `job` can share.
    public func evaluate(
        _ job: Job, data: EvaluationData, sharing: PrefixSharing? = nil,
        progress: @escaping (Int, Int) -> Void = { _, _ in }
    ) throws(EvaluationError) -> SweepPoint {
        let summary = job.checkpoint.summary
        if case .unsupported(let reason) = job.checkpoint.model.support(at: job.length) {
            var point = SweepPoint(
                checkpoint: summary, series: job.series, length: job.length, result: nil, interval: nil,
                unsupported: reason)
            point.data = data.reference
            return point
        }
        let result = try Evaluator.evaluate(
            model: job.model, tokens: data.tokens, documentStarts: data.documentStarts,
            options: settings.windowOptions(length: job.length), byteLevel: data.byteLevel,
            sharing: canShare(job) ? sharing : nil, progress: progress)
        let interval = Bootstrap.perplexityInterval(result, resamples: settings.resamples, seed: settings.seed)
        let (units, unit) = Bootstrap.unitCount(result)
        let note = Bootstrap.note(units: units, unit: unit, resamples: settings.resamples)
        var point = SweepPoint(
            checkpoint: summary, series: job.series, length: job.length, result: result, interval: interval,
            warnings: note.map { [$0] } ?? [])
        point.data = data.reference
        return point
    }
}
