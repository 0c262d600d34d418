import ArgumentParser
import Foundation
import Reports
import TokenData

extension Extrapolate.Dataset {
    /// `dataset benchmark`: decoding throughput and random-window latency.
    public struct Benchmark: ParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Time decoding: whole-file throughput on one and on all cores, and random-window latency.")
        @Argument(help: "A .tokens.zst file.") var file: String
        @Option(help: "Window length for the latency test.") var window: Int = 2048
        @Option(help: "Random windows to time.") var samples: Int = 200

        public init() {}

        public func validate() throws {
            if window < 1 || samples < 1 { throw ValidationError("--window and --samples must be at least 1") }
        }

        public func run() throws {
            let dataset = try TokenDataset(path: file)
            for threads in [1, ProcessInfo.processInfo.activeProcessorCount] {
                var best = Double.infinity
                for _ in 0..<3 { best = min(best, try DecodeTiming.decodeAll(dataset, threads: threads)) }
                print(
                    String(
                        format: "decode, %d thread%@: %.1f M tokens/s (best of 3)", threads, threads == 1 ? "" : "s",
                        Double(dataset.count) / best / 1e6))
            }
            guard dataset.count > window else { return }
            var latencies: [Double] = []
            for _ in 0..<samples {
                let fresh = try TokenDataset(path: file)  // cold cache: decode the frames each time
                let start = Int.random(in: 0...(dataset.count - window))
                let t0 = Date()
                _ = try fresh.tokens(in: start..<(start + window))
                latencies.append(Date().timeIntervalSince(t0))
            }
            latencies.sort()
            print(
                String(
                    format: "random %d-token window (cold): median %.3f ms, p99 %.3f ms", window,
                    latencies[latencies.count / 2] * 1e3,
                    latencies[min(latencies.count - 1, latencies.count * 99 / 100)] * 1e3))
        }
    }
}

/// Whole-file decoding with several readers, for `dataset benchmark`.
enum DecodeTiming {
    /// Seconds to decode every frame of `dataset` with `threads` readers (each its own handle).
    /// - Throws: the first decoding error, naming the file and frame.
    static func decodeAll(_ dataset: TokenDataset, threads: Int) throws -> Double {
        let perFrame = dataset.metadata.tokensPerFrame
        let frames = (dataset.count + perFrame - 1) / perFrame
        let chunk = (frames + threads - 1) / max(threads, 1)
        let readers = try (0..<threads).map { _ in try TokenDataset(path: dataset.path) }
        let failures = FailureBox()
        let started = Date()
        DispatchQueue.concurrentPerform(iterations: threads) { part in
            for frame in (part * chunk)..<min((part + 1) * chunk, frames) {
                do {
                    _ = try readers[part].tokens(in: (frame * perFrame)..<min((frame + 1) * perFrame, dataset.count))
                } catch {
                    failures.record(error)
                }
            }
        }
        if let failure = failures.first { throw failure }
        return Date().timeIntervalSince(started)
    }
}

/// The first error several threads ran into.
final class FailureBox: @unchecked Sendable {
    private let lock = NSLock()
    private var error: (any Error)?

    func record(_ error: any Error) { lock.withLock { if self.error == nil { self.error = error } } }
    var first: (any Error)? { lock.withLock { error } }
}
