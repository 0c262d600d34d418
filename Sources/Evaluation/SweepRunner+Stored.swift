import Engine
import Foundation
import Kernels

/// What a daemon (or any caller that stores results length by length) needs from a sweep: the lengths still to
/// evaluate, run longest first where prefix sharing is exact, each checked against a memory limit, each handed to
/// the caller as it ends so it can be stored before the next begins.
extension SweepRunner {
    /// The version of the numerics stored results carry (`LanguageModel.engineVersion`).
    public static var engineVersion: String { LanguageModel.engineVersion }

    /// The kernel set the CPU's features chose (`avx512`, `avx2`, `generic`), for what a process reports.
    public static var kernelSet: String { Kernels.kernelSet }

    /// The threads passes compute with (every core by default).
    public static var threads: Int {
        get { Kernels.threads }
        set { Kernels.threads = newValue }
    }

    /// One (series, length) as it ended.
    public struct LengthResult: Sendable {
        public enum Outcome: String, Sendable { case evaluated, unsupported, skipped }
        /// Its place in the jobs given, and the job.
        public var index: Int
        public var job: Job
        public var point: SweepPoint
        public var outcome: Outcome
        /// Why it was not evaluated.
        public var reason: String?
        /// The estimate that exceeded the memory limit (a `skipped` length).
        public var memoryEstimate: Int?
        public var started: Date
    }

    /// Evaluates `jobs` (one checkpoint's, as `series(of:)` lists them) but the indices in `done`, in
    /// `evaluationOrder`, sharing windows where exact.
    ///
    /// A length whose memory estimate exceeds `memoryLimit` is `skipped` without running, as is one that runs out of
    /// memory; one its position method cannot represent is `unsupported`.
    /// - Parameters:
    ///   - compute: runs a pass and returns its outcome, or `nil` to stop (a shutdown abandoning it).
    ///   - record: receives each length as it ends; returns `false` to stop (the checkpoint's files changed).
    /// - Returns: whether every length was evaluated (`false`: stopped).
    /// - Throws: `EvaluationError` of a pass that failed; whatever `record` throws.
    public func evaluate(
        _ jobs: [Job], except done: Set<Int>, data: EvaluationData, memoryLimit: Int?,
        compute: (@escaping @Sendable () -> Result<SweepPoint, EvaluationError>) async -> Result<
            SweepPoint, EvaluationError
        >?,
        record: (LengthResult) async throws -> Bool
    ) async throws -> Bool {
        let missing = jobs.indices.filter { !done.contains($0) }
        let sharing = try prefixSharing(for: missing.map { jobs[$0] }, data: data)
        for index in evaluationOrder(jobs) where !done.contains(index) {
            let job = jobs[index]
            let started = Date()
            let (estimate, overLimit) = Self.memoryCheck(job.checkpoint.model, length: job.length, limit: memoryLimit)
            var result = LengthResult(
                index: index, job: job, point: unsupportedPoint(job, reason: ""), outcome: .evaluated, started: started)
            if let reason = overLimit {
                (result.outcome, result.reason, result.memoryEstimate) = (.skipped, reason, estimate)
                result.point = unsupportedPoint(job, reason: reason)
            } else {
                let runner = self
                guard
                    let computed = await compute({
                        Result { () throws(EvaluationError) in
                            try runner.evaluate(job, data: data, sharing: sharing)
                        }
                    })
                else { return false }
                switch computed {
                case .success(let point):
                    result.point = point
                    if let unsupported = point.unsupported {
                        (result.outcome, result.reason) = (.unsupported, unsupported)
                    }
                case .failure(.engine(.outOfMemory(let what))):
                    let reason = "out of memory: \(what)"
                    (result.outcome, result.reason, result.memoryEstimate) = (.skipped, reason, estimate)
                    result.point = unsupportedPoint(job, reason: reason)
                case .failure(let error): throw error
                }
            }
            guard try await record(result) else { return false }
        }
        return true
    }

    /// The memory a pass of `length` takes by estimate, and why it is skipped when that exceeds `limit`.
    static func memoryCheck(_ model: LanguageModel, length: Int, limit: Int?) -> (estimate: Int, skip: String?) {
        let estimate = model.memoryEstimate(length: length, threads: threads)
        guard let limit, estimate > limit else { return (estimate, nil) }
        return (
            estimate, "memory estimate \(ByteSize.format(estimate)) exceeds --memory-limit \(ByteSize.format(limit))"
        )
    }

    func unsupportedPoint(_ job: Job, reason: String) -> SweepPoint {
        SweepPoint(
            checkpoint: job.checkpoint.summary, series: job.series, length: job.length, result: nil, interval: nil,
            unsupported: reason)
    }
}

extension EvaluationError {
    /// Whether trying again later may succeed: the data or a checkpoint file could not be read (I/O, permissions,
    /// an unmounted filesystem); not a bad file or an option that does not fit.
    public var isTransient: Bool {
        switch self {
        case .engine(.checkpoint(.unreadable)), .data: true
        default: false
        }
    }
}

/// Sizes as people write them: `16G`, `512M`, `1.5GiB`, `800000` (bytes).
public enum ByteSize {
    public static func parse(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).uppercased()
        let units: [(String, Double)] = [
            ("TIB", 0x1p40), ("GIB", 0x1p30), ("MIB", 0x1p20), ("KIB", 0x1p10), ("TB", 1e12), ("GB", 1e9),
            ("MB", 1e6), ("KB", 1e3), ("T", 0x1p40), ("G", 0x1p30), ("M", 0x1p20), ("K", 0x1p10), ("B", 1),
        ]
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            guard let value = Double(trimmed.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)),
                value > 0
            else { return nil }
            return Int(value * scale)
        }
        return Int(trimmed).flatMap { $0 > 0 ? $0 : nil }
    }

    /// `1.5 GiB`.
    public static func format(_ bytes: Int) -> String {
        let value = Double(bytes)
        if value >= 0x1p30 { return String(format: "%.1f GiB", value / 0x1p30) }
        if value >= 0x1p20 { return String(format: "%.1f MiB", value / 0x1p20) }
        return "\(bytes) bytes"
    }
}
