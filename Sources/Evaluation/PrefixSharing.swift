import Engine
import Foundation

/// Exact prefix sharing between the lengths of one sweep series.
///
/// For a causal model whose per-position computation does not depend on the window length
/// (`LanguageModel.scoresArePrefixStable`), the log-probabilities of a window are exactly the first positions' of a
/// longer window that starts at the same stream token (with the same BOS), bit for bit when the engine cuts the
/// longer pass's matrix products at the shorter one's end (`LanguageModel.computesExactPrefix`: always for the
/// trained length times a power of two). On a doubling grid under the nonoverlapping protocol, every window of
/// length `kL` starting at a multiple of `2kL` is such a prefix, so half of each shorter length's windows need no
/// pass of their own; under `sliding:S` nearly all of them.
///
/// Lengths are evaluated longest first. Each pass offers every window it ran; the shorter lengths still to come keep
/// the log-probabilities of the targets they would score in the windows it covers, and their evaluation takes them
/// instead of running those windows. What is kept is only those targets' values (at most the scored span per
/// length), never whole windows.
public final class PrefixSharing: @unchecked Sendable {
    /// A window's identity for matching: where its stream inputs start, and whether a BOS precedes them.
    private struct Start: Hashable {
        var document: Int
        var start: Int
        var bos: Bool
    }

    private struct Pending {
        var plan: [WindowSpec]
        var byStart: [Start: Int]
        /// Log-probabilities of the scored targets of covered windows, by window index.
        var taken: [Int: [Double]] = [:]
    }

    private let lock = NSLock()
    private var pending: [Int: Pending] = [:]
    private let model: LanguageModel
    /// `model.computesExactPrefix` by (prefix, length): the same few pairs recur for every window.
    private var exact: [Pair: Bool] = [:]
    private struct Pair: Hashable {
        var prefix: Int
        var length: Int
    }

    /// Prepares sharing among `lengths` of one series of `model` over `count` stream tokens (documents at
    /// `documentStarts`), the windows cut by `options(length)`.
    /// - Throws: `EvaluationError.invalidOptions` as `WindowPlan` does for a length's options.
    public init(
        model: LanguageModel, lengths: [Int], count: Int, documentStarts: [Int], options: (Int) -> WindowOptions
    ) throws(EvaluationError) {
        self.model = model
        for length in Set(lengths) {
            let plan = try WindowPlan.windows(count: count, documentStarts: documentStarts, options: options(length))
            var byStart: [Start: Int] = [:]
            for (index, window) in plan.enumerated() {
                byStart[Start(document: window.document, start: window.inputs.lowerBound, bos: window.bos)] = index
            }
            pending[length] = Pending(plan: plan, byStart: byStart)
        }
    }

    /// Offers the log-probabilities of one window a pass at `length` ran (`logprobs[i]` predicts stream target
    /// `firstTarget + i`, `firstTarget = window.inputs.lowerBound + 1 − p` with `p` BOS tokens) to every shorter
    /// length still pending.
    func offer(window: WindowSpec, logprobs: [Double], length: Int) {
        let key = Start(document: window.document, start: window.inputs.lowerBound, bos: window.bos)
        let firstTarget = window.inputs.lowerBound + 1 - (window.bos ? 1 : 0)
        lock.withLock {
            for (shorter, entry) in pending where shorter < length {
                guard let index = entry.byStart[key], entry.taken[index] == nil else { continue }
                let covered = entry.plan[index]
                // A prefix of the inputs, and computed bit for bit as its own pass would be.
                guard covered.inputs.upperBound <= window.inputs.upperBound,
                    isExact(covered.modelLength, of: window.modelLength)
                else { continue }
                let values = covered.scored.map { logprobs[$0 - firstTarget] }
                pending[shorter]?.taken[index] = values
            }
        }
    }

    /// Whether `prefix` positions of a pass over `length` are computed as a pass over `prefix` (called under `lock`).
    private func isExact(_ prefix: Int, of length: Int) -> Bool {
        let pair = Pair(prefix: prefix, length: length)
        if let known = exact[pair] { return known }
        let answer = model.computesExactPrefix(prefix, of: length)
        exact[pair] = answer
        return answer
    }

    /// The windows of `plan` (the windows of `length`) already covered by longer passes: the scored targets'
    /// log-probabilities by window index. Later offers no longer reach `length`. Empty when `plan` is not the plan
    /// sharing was prepared with (other data or options): nothing is taken that was cut differently.
    func take(length: Int, plan: [WindowSpec]) -> [Int: [Double]] {
        lock.withLock {
            guard let entry = pending.removeValue(forKey: length), entry.plan == plan else { return [:] }
            return entry.taken
        }
    }

    /// Windows of `length` covered so far (for tests and progress).
    public func covered(length: Int) -> Int {
        lock.withLock { pending[length]?.taken.count ?? 0 }
    }
}
