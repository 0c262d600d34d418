import Evaluation
import Foundation
import Prometheus
import Reports
import ResultStore
import Service

/// The daemon's Prometheus metrics (`/metrics`). Labels are states, outcomes and kinds only: never a checkpoint's
/// path or step, which would make a new series per checkpoint.
///
/// Every metric is made once per registry, in `init`; making the same metrics again on the same registry returns
/// the ones already there (swift-prometheus checks the name, type and help), so a second `ServerMetrics` on one
/// registry does not crash.
public final class ServerMetrics: DaemonObserver, @unchecked Sendable {
    public let registry: PrometheusCollectorRegistry
    private let jobs: [JobState: Gauge]
    private let evaluations: [ResultOutcome: Counter]
    private let finishedJobs: [JobState: Counter]
    private let duration: DurationHistogram
    private let tokens: Counter
    private let discovered: Counter
    private let lastSuccess: Gauge
    private let alerts: [Alert.Kind: Gauge]
    private let paused: Gauge
    private let results: Gauge
    private let workers: Gauge
    private let leaseExpiries: Counter
    private let lostLeases: Counter

    /// Buckets of the evaluation-duration histogram: one length of a small model takes seconds, of a large one at
    /// 16× hours.
    public static let durationBuckets: [Duration] = [
        0.25, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800,
    ].map { Duration.milliseconds(Int64($0 * 1000)) }

    /// The product's version (`extrapolate_build_info`, the page's footer).
    public static let productVersion = "0.5.0"

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        jobs = Dictionary(
            uniqueKeysWithValues: JobState.allCases.map {
                (
                    $0,
                    registry.makeGauge(
                        descriptor: Self.describe("jobs", unit: "", help: "Evaluation jobs in the store, by state."),
                        labels: [("state", $0.rawValue)])
                )
            })
        evaluations = Dictionary(
            uniqueKeysWithValues: [ResultOutcome.evaluated, .unsupported, .skipped].map {
                (
                    $0,
                    registry.makeCounter(
                        descriptor: Self.describe(
                            "evaluations", unit: "total",
                            help: "Results stored by this process, by outcome (one per series and length)."),
                        labels: [("outcome", $0.rawValue)])
                )
            })
        finishedJobs = Dictionary(
            uniqueKeysWithValues: [JobState.done, .failed, .replaced, .gone].map {
                (
                    $0,
                    registry.makeCounter(
                        descriptor: Self.describe(
                            "jobs_finished", unit: "total", help: "Jobs this process finished, by final state."),
                        labels: [("state", $0.rawValue)])
                )
            })
        duration = registry.makeDurationHistogram(
            descriptor: Self.describe(
                "evaluation_duration", unit: "seconds", help: "Seconds to evaluate one length of one checkpoint."),
            buckets: Self.durationBuckets)
        tokens = registry.makeCounter(
            descriptor: Self.describe("tokens_evaluated", unit: "total", help: "Target tokens scored by this process."))
        discovered = registry.makeCounter(
            descriptor: Self.describe(
                "checkpoints_discovered", unit: "total",
                help: "Checkpoint versions this process registered (complete or not)."))
        lastSuccess = registry.makeGauge(
            descriptor: Self.describe(
                "last_success_timestamp", unit: "seconds",
                help: "Unix time of the last result this process stored (0: none yet)."))
        alerts = Dictionary(
            uniqueKeysWithValues: [Alert.Kind.regression, .ratio, .passkey].map {
                (
                    $0,
                    registry.makeGauge(
                        descriptor: Self.describe(
                            "alerts", unit: "", help: "Regression alerts standing now, by kind (Docs/daemon.md)."),
                        labels: [("kind", $0.rawValue)])
                )
            })
        paused = registry.makeGauge(
            descriptor: Self.describe("worker_paused", unit: "", help: "1 while the worker is paused."))
        results = registry.makeGauge(descriptor: Self.describe("results", unit: "", help: "Results in the store."))
        workers = registry.makeGauge(
            descriptor: Self.describe(
                "workers", unit: "", help: "Processes that sent a heartbeat to the store lately (/api/workers)."))
        leaseExpiries = registry.makeCounter(
            descriptor: Self.describe(
                "lease_expiries", unit: "",
                help: "Jobs this process returned to the queue because their worker's lease ran out."))
        lostLeases = registry.makeCounter(
            descriptor: Self.describe(
                "lost_leases", unit: "", help: "Jobs this process stopped because another worker had taken them."))
        registry.makeGauge(
            descriptor: Self.describe("build_info", unit: "", help: "Build and runtime facts; the value is always 1."),
            labels: [
                ("engine", SweepRunner.engineVersion), ("kernels", SweepRunner.kernelSet),
                ("version", Self.productVersion),
            ]
        ).set(to: 1)
    }

    /// `extrapolate_NAME[_UNIT]` with its help line.
    static func describe(_ name: String, unit: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "extrapolate", metricName: name, unitName: unit, helpText: help)
    }

    // MARK: DaemonObserver

    public func discovered(checkpoints: Int) {
        if checkpoints > 0 { discovered.increment(by: Int64(checkpoints)) }
    }

    public func stored(outcome: ResultOutcome, seconds: Double, tokens: Int) {
        evaluations[outcome]?.increment()
        guard outcome == .evaluated else { return }
        duration.record(.milliseconds(Int64((seconds * 1000).rounded())))
        if tokens > 0 { self.tokens.increment(by: Int64(tokens)) }
        lastSuccess.set(to: Date().timeIntervalSince1970)
    }

    public func finished(job state: JobState) { finishedJobs[state]?.increment() }

    public func rescued(jobs count: Int) { if count > 0 { leaseExpiries.increment(by: Int64(count)) } }

    public func lostLease() { lostLeases.increment() }

    // MARK: Scraping

    /// The text exposition, with the gauges read from the store now.
    public func exposition(store: any ResultStore, daemon: Daemon?, alerts standing: [Alert]) async throws -> String {
        let counts = try await store.counts()
        for state in JobState.allCases {
            jobs[state]?.set(to: Double(counts.jobs(state)))
        }
        results.set(to: Double(counts.results))
        workers.set(to: Double(try await store.workers(withinSeconds: WorkerListing.window).count))
        paused.set(to: daemon?.isPaused == true ? 1 : 0)
        for kind in [Alert.Kind.regression, .ratio] {
            alerts[kind]?.set(to: Double(standing.count { $0.kind == kind }))
        }
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }
}
