import Evaluation
import Reports
import Foundation
import ResultStore
import Server
import Service
import TestSupport
import Testing

/// What the page shows must be what was measured: few-window intervals flagged, lengths a model cannot represent
/// named, where each number comes from, stable colours, and any run name reachable.
@Suite(.serialized) struct PageTruth {
    /// A learned-position run (the GPT-2 fixture, a table of 256 positions) beside the demo's ALiBi run, under a
    /// run folder whose name needs percent-encoding, evaluated at 1x, 2x and 16x on a small budget.
    static func store(_ scratch: ScratchFolder) async throws -> (SQLiteStore, DaemonConfiguration) {
        let runs = scratch.path("runs")
        let odd = runs + "/my run #1?ü"
        try FileManager.default.createDirectory(atPath: odd, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: Repository.demo("alibi", step: 500), toPath: odd + "/step-500.safetensors")
        try FileManager.default.copyItem(atPath: Repository.model("gpt2"), toPath: runs + "/learned")
        try FileManager.default.moveItem(atPath: runs + "/learned", toPath: runs + "/learned-tmp")
        try FileManager.default.createDirectory(atPath: runs + "/learned", withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: runs + "/learned-tmp", toPath: runs + "/learned/checkpoint-10")
        let tokens = scratch.path("tokens.u16")
        try Data((0..<40000).flatMap { [UInt8($0 % 96), 0] }).write(to: URL(fileURLWithPath: tokens))
        var settings = EvaluationSettings(
            data: DataReference(path: tokens, dtype: .uint16), lengths: try LengthGrid(parsing: "1x,2x,16x"),
            budget: 2048, resamples: 20)
        settings.bos = .none
        var configuration = DaemonConfiguration(
            targets: [WatchTarget(folder: runs, settings: settings)], store: scratch.path("results.sqlite"))
        configuration.quietSeconds = 0
        configuration.pollOnly = true
        let store = try SQLiteStore(writingTo: configuration.store)
        _ = try await Daemon(configuration: configuration, store: store, logger: .quiet).runOnce()
        return (store, configuration)
    }

    @Test("Few windows are hatched, unsupported lengths are named, provenance is beside every number")
    func chartsAndTable() async throws {
        let scratch = try ScratchFolder("truth")
        defer { scratch.remove() }
        let (store, _) = try await Self.store(scratch)
        let server = try await TestServer.start(serving: store)
        defer { Task { await server.stop() } }
        let overview = try await server.request("/charts/overview.svg")
        #expect(overview.status == 200)
        // 16x of a 64-token model with 2,048 targets: 2 windows; of a 256-position learned table (trained at 256): unsupported.
        #expect(overview.text.contains("class=\"hatched\""), "no hatched band for a 2-window interval")
        #expect(overview.text.contains("fewer than 20 windows"))
        #expect(overview.text.contains("class=\"unsupported\"") && overview.text.contains("256 rows"))
        // Each run is drawn in the colour its name picks, whatever else is drawn.
        for run in ["learned", "my run #1?ü"] {
            let group = try #require(
                overview.text.components(separatedBy: "data-series=\"").first {
                    $0.hasPrefix(run.replacingOccurrences(of: "&", with: "&amp;") + " (")
                })
            #expect(group.contains("stroke=\"\(Plot.color(for: run))\""), "\(run)")
        }
        // Hidden runs are left out; loss by position marks L.
        let hidden = try await server.request("/charts/overview.svg?hide=learned")
        #expect(!hidden.text.contains("data-series=\"learned") && hidden.text.contains("data-series=\"my run"))
        let alibi = try #require(try await store.status().checkpoints.first { $0.run == "my run #1?ü" })
        let positions = try await server.request("/charts/positions.svg?checkpoint=\(alibi.id)")
        #expect(positions.status == 200 && positions.text.contains(">L = 64</text>"))
        let table = try await server.request("/charts/ratios.html")
        #expect(table.text.contains("class=\"unsupported\""), "\(table.text)")
        #expect(table.text.contains("tokens.u16 (xxh64:"), "the data is named beside the numbers")
        #expect(table.text.contains("2,048 targets per length") && table.text.contains("windows at"))
        #expect(table.text.contains("* interval from fewer than 20 windows"))
        let curves = try JSONValue.parse(try await server.request("/api/curves?newest=true").body)["curves"]?.array
        #expect(curves?.allSatisfy { $0["provenance"]?.string?.contains("2,048 targets per length") == true } == true)
        let alerts = try JSONValue.parse(try await server.request("/api/alerts").body)
        let unmeasured = alerts["unmeasured"]?.array ?? []
        #expect(unmeasured.count == 1 && unmeasured.first?["run"]?.string == "learned")
    }

    @Test("The demo's five runs get five different colours, by name")
    func demoColours() {
        let names = ["sinusoidal", "rotary", "t5", "alibi", "nope"]
        #expect(Set(names.map(Plot.color(for:))).count == names.count)
    }

    @Test("A run name with spaces, '#', '?' and non-ASCII opens: path parameters are percent-decoded")
    func percentDecoding() async throws {
        let scratch = try ScratchFolder("truth")
        defer { scratch.remove() }
        let (store, _) = try await Self.store(scratch)
        let server = try await TestServer.start(serving: store)
        defer { Task { await server.stop() } }
        let name = "my run #1?ü"
        let encoded = try #require(name.addingPercentEncoding(withAllowedCharacters: .alphanumerics))
        for path in [
            "/api/runs/\(encoded)/checkpoints", "/charts/runs/\(encoded)/checkpoints.svg",
            "/charts/runs/\(encoded)/steps.svg",
        ] {
            let reply = try await server.request(path)
            #expect(reply.status == 200, "\(path): \(reply.status) \(reply.text.prefix(200))")
        }
        let runs = try JSONValue.parse(try await server.request("/api/runs").body)["runs"]?.array ?? []
        #expect(runs.contains { $0["name"]?.string == name })
    }
}
