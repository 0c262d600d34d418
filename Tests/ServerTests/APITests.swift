import Engine
import Foundation
import Prometheus
import Reports
import ResultStore
import Server
import Service
import TestSupport
import Testing

/// The HTTP API against Docs/http-api.yaml: every documented route and status is exercised on a real server, and
/// every response is checked against the spec's schema for it.
@Suite(.serialized) struct APIConformance {
    static let token = "test-token-0123456789"

    @Test func everyDocumentedRouteAnswersAsDocumented() async throws {
        let fixture = try await EvaluatedStore("api", passkey: true)
        defer { fixture.remove() }
        let spec = try OpenAPISpec(path: Repository.root.appendingPathComponent("Docs/http-api.yaml").path)
        // Two daemon objects on the one store: one never runs (the open server is not ready), one runs.
        let idle = Daemon(configuration: fixture.configuration, store: fixture.store, logger: .quiet)
        let daemon = Daemon(configuration: fixture.configuration, store: fixture.store, logger: .quiet)
        func state(token: String?, daemon: Daemon?) -> ServerState {
            ServerState(
                store: fixture.store, daemon: daemon, metrics: ServerMetrics(),
                configuration: ServerConfiguration(port: 0, token: token, maximumBodyBytes: 1024))
        }
        // An open server whose daemon is not running, a token server with a running daemon, a store-only server.
        let open = try await TestServer.start(state(token: nil, daemon: idle))
        let guarded = try await TestServer.start(state(token: Self.token, daemon: daemon), runDaemon: true)
        let storeOnly = try await TestServer.start(state(token: Self.token, daemon: nil))
        defer { Task { await open.stop() } }

        let checkpoints = try await fixture.store.status().checkpoints
        let alibi = checkpoints.filter { $0.run == "alibi" }.sorted { $0.step! < $1.step! }
        let broken = try #require(checkpoints.first { $0.run == "broken" })
        let (a, b) = (alibi[0].id, alibi[1].id)
        let bearer = ["Authorization": "Bearer \(Self.token)"]
        let json = ["Content-Type": "application/json"]

        struct Call {
            var server: TestServer
            var method = "GET"
            var path: String
            var headers: [String: String] = [:]
            var body: Data? = nil
            var status: Int
        }
        let calls: [Call] = [
            Call(server: open, path: "/healthz", status: 200),
            Call(server: open, path: "/readyz", status: 503),
            Call(server: guarded, path: "/readyz", headers: bearer, status: 200),
            Call(server: open, path: "/metrics", status: 200),
            Call(server: open, path: "/openapi.yaml", status: 200),
            Call(server: open, path: "/api/runs", status: 200),
            Call(server: open, path: "/api/runs/alibi/checkpoints", status: 200),
            Call(server: open, path: "/api/runs/broken/checkpoints", status: 200),
            Call(server: open, path: "/api/runs/nothing/checkpoints", status: 404),
            Call(server: open, path: "/api/results", status: 200),
            Call(server: open, path: "/api/results?run=alibi&length=128&protocol=nonoverlapping", status: 200),
            Call(server: open, path: "/api/results?format=csv", status: 200),
            Call(server: open, path: "/api/results?format=xml", status: 400),
            Call(server: open, path: "/api/results?length=long", status: 400),
            Call(server: open, path: "/api/curves", status: 200),
            Call(server: open, path: "/api/curves?newest=true&run=rotary", status: 200),
            Call(server: open, path: "/api/curves?step=x", status: 400),
            Call(server: open, path: "/api/positions?checkpoint=\(a)", status: 200),
            Call(server: open, path: "/api/positions", status: 400),
            Call(server: open, path: "/api/positions?checkpoint=999999", status: 404),
            Call(server: open, path: "/api/compare?a=\(a)&b=\(b)", status: 200),
            Call(server: open, path: "/api/compare?a=\(a)", status: 400),
            Call(server: open, path: "/api/compare?a=\(a)&b=\(broken.id)", status: 404),
            Call(server: open, path: "/api/queue", status: 200),
            Call(server: open, path: "/api/workers", status: 200),
            Call(server: open, path: "/api/failures", status: 200),
            Call(server: open, path: "/api/alerts", status: 200),
            Call(server: open, path: "/api/version", status: 200),
            Call(server: open, method: "POST", path: "/api/checkpoints/\(broken.id)/requeue", status: 403),
            Call(server: guarded, method: "POST", path: "/api/checkpoints/\(broken.id)/requeue", status: 401),
            Call(server: guarded, method: "POST", path: "/api/checkpoints/\(a)/requeue", headers: bearer, status: 200),
            Call(server: guarded, method: "POST", path: "/api/checkpoints/x/requeue", headers: bearer, status: 400),
            Call(
                server: guarded, method: "POST", path: "/api/checkpoints/999999/requeue", headers: bearer, status: 404),
            Call(
                server: open, method: "POST", path: "/api/worker", headers: json, body: Data(#"{"paused":true}"#.utf8),
                status: 403),
            Call(
                server: guarded, method: "POST", path: "/api/worker", body: Data(#"{"paused":true}"#.utf8), status: 401),
            Call(
                server: guarded, method: "POST", path: "/api/worker", headers: bearer.merging(json) { a, _ in a },
                body: Data(#"{"paused":true}"#.utf8), status: 200),
            Call(
                server: guarded, method: "POST", path: "/api/worker", headers: bearer, body: Data(#"{"paused":"#.utf8),
                status: 400),
            Call(
                server: guarded, method: "POST", path: "/api/worker", headers: bearer,
                body: Data(repeating: 0x20, count: 4096), status: 413),
            Call(
                server: storeOnly, method: "POST", path: "/api/worker", headers: bearer,
                body: Data(#"{"paused":false}"#.utf8), status: 409),
            Call(server: open, path: "/", status: 200),
            Call(server: guarded, path: "/?token=\(Self.token)", status: 303),
            Call(server: open, path: "/app.js", status: 200),
            Call(server: open, path: "/style.css", status: 200),
            Call(server: open, path: "/charts/overview.svg", status: 200),
            Call(server: open, path: "/charts/ratios.html", status: 200),
            Call(server: open, path: "/charts/runs/alibi/checkpoints.svg", status: 200),
            Call(server: open, path: "/charts/runs/nothing/checkpoints.svg", status: 404),
            Call(server: open, path: "/charts/runs/rotary/steps.svg", status: 200),
            Call(server: open, path: "/charts/runs/nothing/steps.svg", status: 404),
            Call(server: open, path: "/charts/positions.svg?checkpoint=\(b)", status: 200),
            Call(server: open, path: "/charts/positions.svg", status: 400),
            Call(server: open, path: "/charts/positions.svg?checkpoint=999999", status: 404),
            Call(server: open, path: "/charts/compare.svg?a=\(a)&b=\(b)", status: 200),
            Call(server: open, path: "/charts/compare.svg?a=\(a)", status: 400),
            Call(server: open, path: "/charts/overview.svg?hide=rotary", status: 200),
            Call(server: open, path: "/api/results?task=passkey", status: 200),
            Call(server: open, path: "/api/results?task=passkey&run=alibi&depth=100&format=csv", status: 200),
            Call(server: open, path: "/api/results?task=bleu", status: 400),
            Call(server: open, path: "/api/results?task=passkey&depth=101", status: 400),
            Call(server: open, path: "/charts/runs/alibi/passkey-lengths.svg", status: 200),
            Call(server: open, path: "/charts/runs/nothing/passkey-lengths.svg", status: 404),
            Call(server: open, path: "/charts/runs/rotary/passkey-steps.svg", status: 200),
            Call(server: open, path: "/charts/runs/nothing/passkey-steps.svg", status: 404),
            Call(server: open, path: "/charts/passkey.svg?checkpoint=\(b)", status: 200),
            Call(server: open, path: "/charts/passkey.svg?checkpoint=\(b)&series=yarn", status: 404),
            Call(server: open, path: "/charts/passkey.svg", status: 400),
        ]
        var exercised = Set<String>()
        for call in calls {
            let reply = try await call.server.request(
                call.path, method: call.method, headers: call.headers, body: call.body)
            #expect(
                reply.status == call.status, "\(call.method) \(call.path): \(reply.status) \(reply.text.prefix(300))")
            let problems = spec.problems(
                path: call.path, method: call.method, status: reply.status, contentType: reply.contentType,
                body: reply.body)
            #expect(problems.isEmpty, "\(call.method) \(call.path): \(problems.joined(separator: "\n"))")
            if let template = spec.template(for: call.path) {
                exercised.insert("\(call.method.lowercased()) \(template) \(reply.status)")
            }
        }
        for operation in spec.operations {
            for status in operation.statuses {
                #expect(
                    exercised.contains("\(operation.method) \(operation.path) \(status)"),
                    "the test never saw \(operation.method.uppercased()) \(operation.path) answer \(status)")
            }
        }
        // The worker really paused; the one without a token did not.
        #expect(daemon.isPaused && !idle.isPaused)
        await guarded.stop()
        await storeOnly.stop()
    }

    @Test func servedSpecIsTheDocumentedOne() async throws {
        let fixture = try await EvaluatedStore("spec", methods: ["alibi"])
        defer { fixture.remove() }
        let server = try await TestServer.start(serving: fixture.store)
        let reply = try await server.request("/openapi.yaml")
        await server.stop()
        let documented = try Data(contentsOf: Repository.root.appendingPathComponent("Docs/http-api.yaml"))
        #expect(reply.body == documented)
    }

    @Test func resultsAgreeWithTheStoreAndEveryFilterFilters() async throws {
        let fixture = try await EvaluatedStore("filters")
        defer { fixture.remove() }
        let server = try await TestServer.start(serving: fixture.store)
        defer { Task { await server.stop() } }
        let stored = try await fixture.store.results(run: nil)
        #expect(stored.count == 12)  // 2 runs × 2 checkpoints × 3 lengths
        let all = try JSONValue.parse(try await server.request("/api/results").body)["results"]?.array ?? []
        #expect(all.count == stored.count)
        for (entry, row) in zip(all, stored) {
            #expect(entry["perplexity"]?.number == row.result.point.perplexity)
            #expect(entry["length"]?.number == Double(row.result.length))
            #expect(entry["checkpoint"]?.string == row.checkpoint)
        }
        let rotaryLong =
            try JSONValue.parse(
                try await server.request("/api/results?run=rotary&length=256").body)["results"]?.array ?? []
        #expect(rotaryLong.count == 2)
        #expect(rotaryLong.allSatisfy { $0["run"]?.string == "rotary" && $0["length"]?.number == 256 })
        let step = try JSONValue.parse(try await server.request("/api/results?step=500").body)["results"]?.array ?? []
        #expect(step.count == 6 && step.allSatisfy { $0["step"]?.number == 500 })
        let none = try JSONValue.parse(try await server.request("/api/results?protocol=last-half").body)
        #expect(none["results"]?.array?.isEmpty == true)
        let csv = try await server.request("/api/results?run=alibi&format=csv")
        #expect(csv.text.split(separator: "\n").count == 7)
        #expect(csv.text == StoredResultsReport(stored.filter { $0.run == "alibi" }).csv())
        // The failure of the broken run is listed with its reason.
        let failures = try JSONValue.parse(try await server.request("/api/failures").body)["failures"]?.array ?? []
        #expect(
            failures.contains { $0["run"]?.string == "broken" && ($0["error"]?.string ?? "").contains("safetensors") })
    }

    @Test("Passkey cells: kept out of the perplexity answers, listed with task=passkey, as CSV, a heatmap and charts")
    func passkeyResultsAgreeWithTheStore() async throws {
        let fixture = try await EvaluatedStore("passkey-api", methods: ["alibi"], passkey: true)
        defer { fixture.remove() }
        let server = try await TestServer.start(serving: fixture.store)
        defer { Task { await server.stop() } }
        let rows = try await fixture.store.results(run: nil).map(StoredResultsReport.Row.init)
        let perplexity = try JSONValue.parse(try await server.request("/api/results").body)["results"]?.array ?? []
        #expect(perplexity.count == 6 && perplexity.allSatisfy { $0["passkey"] == nil })
        let cells = try JSONValue.parse(try await server.request("/api/results?task=passkey").body)["results"]?.array
        #expect(cells?.count == 2 * 3 * 2, "2 checkpoints × 3 lengths × 2 depths")
        #expect(cells?.allSatisfy { $0["protocol"]?.string == "passkey" && $0["perplexity"] == nil } == true)
        let evaluated = cells?.filter { $0["outcome"]?.string == "evaluated" } ?? []
        #expect(evaluated.count == 4 && evaluated.allSatisfy { $0["length"]?.number == 256 })
        #expect(evaluated.allSatisfy { ($0["passkey"]?["trials"]?.array?.count ?? 0) == 2 })
        let csv = try await server.request("/api/results?task=passkey&format=csv")
        #expect(csv.text == StoredPasskeyReport(rows).csv())
        #expect(csv.text.split(separator: "\n").count == 13)
        let onlyDeep = try JSONValue.parse(try await server.request("/api/results?task=passkey&depth=100").body)
        #expect(onlyDeep["results"]?.array?.count == 6)
        let newest = try #require(rows.filter { $0.passkey != nil }.max { ($0.step ?? 0) < ($1.step ?? 0) })
        let heatmap = try await server.request("/charts/passkey.svg?checkpoint=\(newest.checkpointID)").text
        #expect(heatmap.contains("passkey retrieval: alibi step 1000"))
        #expect(heatmap.components(separatedBy: "accuracy 0.").count - 1 == 2, "the two cells at 4× show accuracy")
        #expect(heatmap.components(separatedBy: "247 tokens").count - 1 >= 4, "the four short cells say why")
        let lengths = try await server.request("/charts/runs/alibi/passkey-lengths.svg").text
        #expect(lengths.contains("data-series=\"step 500\"") && lengths.contains("data-series=\"step 1000\""))
        let alerts = try JSONValue.parse(try await server.request("/api/alerts").body)
        #expect(alerts["thresholds"]?["passkeyDrop"]?.number == 0.2)
    }

    @Test func unknownRoutesAndMalformedRequestsGetJSONErrorsAndTheServerKeepsServing() async throws {
        let fixture = try await EvaluatedStore("errors", methods: ["alibi"])
        defer { fixture.remove() }
        let daemon = Daemon(configuration: fixture.configuration, store: fixture.store, logger: .quiet)
        let server = try await TestServer.start(
            ServerState(
                store: fixture.store, daemon: daemon, metrics: ServerMetrics(),
                configuration: ServerConfiguration(port: 0, token: APIConformance.token, maximumBodyBytes: 256)))
        defer { Task { await server.stop() } }
        let bearer = ["Authorization": "Bearer \(APIConformance.token)"]
        for (method, path, body, status) in [
            ("GET", "/no/such/route", nil, 404), ("GET", "/api/runs/../../etc/passwd", nil, 404),
            ("DELETE", "/api/runs", nil, 404), ("POST", "/api/worker", Data("[1,2".utf8), 400),
            ("POST", "/api/worker", Data(#"{"paused": "yes"}"#.utf8), 400),
            ("POST", "/api/worker", Data(repeating: 0x7b, count: 300), 413),
        ] as [(String, String, Data?, Int)] {
            let reply = try await server.request(path, method: method, headers: bearer, body: body)
            #expect(reply.status == status, "\(method) \(path): \(reply.status)")
            let error = try JSONValue.parse(reply.body)["error"]
            #expect(error?["status"]?.number == Double(status) && !(error?["message"]?.string ?? "").isEmpty)
        }
        // Without the token nothing but /healthz answers; a wrong token is no token.
        #expect(try await server.request("/api/runs").status == 401)
        #expect(try await server.request("/api/runs", headers: ["Authorization": "Bearer wrong"]).status == 401)
        #expect(try await server.request("/healthz").status == 200)
        #expect(try await server.request("/api/runs", headers: bearer).status == 200)
        // The page's cookie works for reading, not for changing.
        let cookie = ["Cookie": "extrapolate_token=\(APIConformance.token)"]
        #expect(try await server.request("/api/runs", headers: cookie).status == 200)
        #expect(
            try await server.request(
                "/api/worker", method: "POST", headers: cookie, body: Data(#"{"paused":true}"#.utf8)
            )
            .status == 401)
        #expect(!daemon.isPaused)
    }

    @Test func newResultsReachTheAPIWhileItServes() async throws {
        let fixture = try await EvaluatedStore("fresh", methods: ["alibi"])
        defer { fixture.remove() }
        let server = try await TestServer.start(serving: fixture.store)
        defer { Task { await server.stop() } }
        func count() async throws -> Int {
            try JSONValue.parse(try await server.request("/api/results").body)["results"]?.array?.count ?? -1
        }
        #expect(try await count() == 6)
        let stamp = try JSONValue.parse(try await server.request("/api/version").body)["version"]
        try FileManager.default.copyItem(
            atPath: Repository.demo("alibi", step: 2000),
            toPath: fixture.scratch.path("runs/alibi/step-2000.safetensors"))
        _ = try await Daemon(configuration: fixture.configuration, store: fixture.store, logger: .quiet).runOnce()
        #expect(try await count() == 9)
        #expect(try JSONValue.parse(try await server.request("/api/version").body)["version"] != stamp)
        let curves = try JSONValue.parse(try await server.request("/api/curves?newest=true").body)["curves"]?.array
        #expect(curves?.first?["step"]?.number == 2000)
    }

    @Test func requeueRetriesAFailedJob() async throws {
        let fixture = try await EvaluatedStore("requeue", methods: ["alibi"])
        defer { fixture.remove() }
        // A failed job: a version queued, claimed and failed by hand, as the worker would.
        let status = try await fixture.store.status()
        let done = try #require(status.checkpoints.last)
        let sighting = Sighting(
            run: done.run, runFolder: done.runFolder, path: done.runFolder + "/step-9000.safetensors", step: 9000,
            scheme: done.scheme, size: 1, modified: 1, contentHash: "xxh64:injected", state: .current)
        let version = try await fixture.store.register(sighting).record
        _ = try await fixture.store.ensureJob(checkpoint: version.id, settings: try #require(status.jobs.last).settings)
        let claimed = try #require(try await fixture.store.claim(worker: "test", leaseSeconds: 60))
        let job = claimed.job
        try await fixture.store.finish(claimed.lease, state: .failed, error: "injected", attempts: 8, retrySeconds: nil)
        let server = try await TestServer.start(serving: fixture.store, token: APIConformance.token)
        defer { Task { await server.stop() } }
        let reply = try await server.request(
            "/api/checkpoints/\(job.checkpointID)/requeue", method: "POST",
            headers: ["Authorization": "Bearer \(APIConformance.token)"])
        #expect(reply.status == 200)
        #expect(try JSONValue.parse(reply.body)["requeued"]?.number == 1)
        let after = try #require(try await fixture.store.status().jobs.first { $0.id == job.id })
        #expect(after.state == .pending && after.attempts == 0 && after.error == nil)
    }
}

/// `/metrics`: the metrics the issue names, values that agree with the store, no per-checkpoint labels.
@Suite struct MetricsTests {
    @Test func exposesJobsResultsAndBuildInfoWithoutCheckpointLabels() async throws {
        let fixture = try await EvaluatedStore("metrics", methods: ["alibi"])
        defer { fixture.remove() }
        let metrics = ServerMetrics()
        // What a worker reports as it evaluates.
        metrics.discovered(checkpoints: 3)
        metrics.stored(outcome: .evaluated, seconds: 2.5, tokens: 4096)
        metrics.stored(outcome: .evaluated, seconds: 700, tokens: 4096)
        metrics.stored(outcome: .skipped, seconds: 0, tokens: 0)
        metrics.finished(job: .done)
        let server = try await TestServer.start(serving: fixture.store, metrics: metrics)
        defer { Task { await server.stop() } }
        let text = try await server.request("/metrics").text
        func value(_ series: String) -> Double? {
            text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap {
                Double($0.split(separator: " ").last ?? "")
            }
        }
        let status = try await fixture.store.status()
        #expect(value(#"extrapolate_jobs{state="done"}"#) == Double(status.jobs.count { $0.state == .done }))
        #expect(value(#"extrapolate_jobs{state="pending"}"#) == 0)
        #expect(value("extrapolate_results") == Double(status.results))
        #expect(value(#"extrapolate_evaluations_total{outcome="evaluated"}"#) == 2)
        #expect(value(#"extrapolate_evaluations_total{outcome="skipped"}"#) == 1)
        #expect(value("extrapolate_tokens_evaluated_total") == 8192)
        #expect(value("extrapolate_checkpoints_discovered_total") == 3)
        #expect(value(#"extrapolate_jobs_finished_total{state="done"}"#) == 1)
        #expect(value(#"extrapolate_evaluation_duration_seconds_bucket{le="5.0"}"#) == 1)
        #expect(value(#"extrapolate_evaluation_duration_seconds_bucket{le="1800.0"}"#) == 2)
        #expect(value("extrapolate_evaluation_duration_seconds_count") == 2)
        #expect((value("extrapolate_last_success_timestamp_seconds") ?? 0) > Date().timeIntervalSince1970 - 60)
        #expect(
            text.contains(#"extrapolate_build_info{"#) && text.contains("engine=\"\(LanguageModel.engineVersion)\""))
        #expect(value(#"extrapolate_alerts{kind="ratio"}"#) != nil)
        #expect(text.contains("# TYPE extrapolate_evaluation_duration_seconds histogram"))
        // No label carries a path or a step.
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            #expect(!line.contains("/") && !line.contains("step"), "\(line)")
        }
    }

    @Test func registeringTheMetricsTwiceDoesNotCrash() {
        let registry = PrometheusCollectorRegistry()
        let first = ServerMetrics(registry: registry)
        let second = ServerMetrics(registry: registry)
        first.stored(outcome: .evaluated, seconds: 1, tokens: 10)
        second.stored(outcome: .evaluated, seconds: 1, tokens: 10)
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        // One family, counted by both (they are the same metric).
        #expect(String(decoding: buffer, as: UTF8.self).contains("extrapolate_tokens_evaluated_total 20"))
    }
}
