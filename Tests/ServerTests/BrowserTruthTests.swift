import Foundation
import TestSupport
import Testing

/// The page items of the first day, in a real browser: what cannot be measured is said, where L came from is said,
/// odd run names open, and Compare starts on two different checkpoints and draws both.
@Suite(.serialized) struct BrowserTruthTests {
    @Test func thePageSaysWhatItCouldNotMeasureAndWhereLCameFrom() async throws {
        try await checkThePage(store: nil)
    }

    /// The same page, served by `serve --store postgres://…`: what a fleet's discoverer shows, with its workers.
    @Test(.enabled(if: TestPostgres.url != nil, Comment(rawValue: TestPostgres.absence)))
    func thePageOverPostgreSQL() async throws {
        let url = try await TestPostgres.database()
        defer { Task { await TestPostgres.drop(url) } }
        try await checkThePage(store: url)
    }

    func checkThePage(store: String?) async throws {
        guard let chromium = BrowserTests.browser() else { return }
        let scratch = try ScratchFolder("truth-browser")
        defer { scratch.remove() }
        // A learned-position run (GPT-2 fixture: 256 positions), the ALiBi demo under a name that needs encoding.
        let runs = scratch.path("runs")
        let odd = runs + "/my run #1?ü"
        try FileManager.default.createDirectory(atPath: odd, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: Repository.demo("alibi", step: 500), toPath: odd + "/step-500.safetensors")
        try FileManager.default.copyItem(
            atPath: Repository.demo("alibi", step: 1000), toPath: odd + "/step-1000.safetensors")
        try FileManager.default.createDirectory(atPath: runs + "/learned", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Repository.model("gpt2"), toPath: runs + "/learned/checkpoint-10")
        let tokens = scratch.path("tokens.u16")
        try Data((0..<40000).flatMap { [UInt8($0 % 96), 0] }).write(to: URL(fileURLWithPath: tokens))
        let server = try await ServeProcess.start(
            [runs, "--data", tokens, "--quiet-seconds", "0", "--lengths", "1x,2x,16x", "--budget", "2048"]
                + (store.map { ["--store", $0] } ?? []), in: scratch)
        // 2 ALiBi checkpoints × 3 lengths, and the learned one × 3 (1 evaluated, 2 unsupported).
        _ = try await poll(for: 300, every: .milliseconds(200)) {
            try JSONValue.parse(try await server.get("/api/version").body)["results"]?.number == 9
        }
        let base = "http://127.0.0.1:\(server.port)/"
        func dom(_ fragment: String) async throws -> String {
            let (status, dom, log) = try await Executable.run(
                [
                    "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
                    "--user-data-dir=\(scratch.path("chromium"))", "--virtual-time-budget=10000", "--dump-dom",
                    base + fragment,
                ], tool: chromium, in: scratch)
            #expect(status == 0)
            let console = log.split(separator: "\n").filter { $0.contains(":CONSOLE") }
            #expect(console.isEmpty, "\(fragment): \(console.joined(separator: "\n"))")
            #expect(dom.contains(#"data-ready="true""#), "\(fragment) never finished rendering")
            return dom
        }
        let overview = try await dom("#/")
        #expect(overview.contains("Not measurable at 16L: learned (learned absolute positions have 256 rows"))
        #expect(overview.contains("class=\"unsupported\"") && overview.contains("class=\"hatched\""))
        #expect(overview.contains("tokens.u16 (xxh64:"))
        #expect(overview.contains("Workers (1)") && overview.contains("discover, evaluate"), "this process, listed")
        let learned = try await dom("#/run/learned")
        #expect(learned.contains("Trained at L = 256 tokens (config: n_positions)"), "\(learned.suffix(3000))")
        #expect(learned.contains("Not computable: 2L"))
        #expect(learned.contains("computed over tokens.u16 (xxh64:"), "the API's provenance line, on the run page")
        let encoded = try #require("my run #1?ü".addingPercentEncoding(withAllowedCharacters: .alphanumerics))
        let oddPage = try await dom("#/run/\(encoded)")
        #expect(!oddPage.contains("Cannot load") && oddPage.contains("Trained at L = 64 tokens"))
        let compare = try await dom("#/compare")
        // The checkpoint chosen in each side's list (each side also chooses its run).
        let selected = ["compare-a", "compare-b"].compactMap { id -> String? in
            let list =
                compare.components(separatedBy: "id=\"\(id)\">").dropFirst().first?
                .components(separatedBy: "</select>").first ?? ""
            return list.components(separatedBy: "<option value=\"").dropFirst().first { $0.contains("\" selected") }
                .map { String($0.prefix { $0 != "\"" }) }
        }
        #expect(selected.count == 2 && Set(selected).count == 2, "A and B default to two checkpoints: \(selected)")
        if selected.count == 2 {
            let drawn = try await dom("#/compare?a=\(selected[0])&b=\(selected[1])")
            let chart = drawn.components(separatedBy: "id=\"compare-chart\"").last ?? ""
            #expect(chart.components(separatedBy: "<g class=\"series\"").count - 1 == 2, "both curves are drawn")
        }
        let artifacts = Repository.root.appendingPathComponent(".build/artifacts")
        try FileManager.default.createDirectory(at: artifacts, withIntermediateDirectories: true)
        let shot = artifacts.appendingPathComponent("learned-run.png").path
        _ = try await Executable.run(
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                "--user-data-dir=\(scratch.path("chromium"))", "--virtual-time-budget=10000", "--window-size=1280,1400",
                "--screenshot=\(shot)", base + "#/run/learned",
            ], tool: chromium, in: scratch)
        print("BrowserTruthTests: screenshot of a learned-position run at \(shot)")
        #expect(try await server.stop() == 0)
    }

    /// `serve --tasks perplexity,passkey`: the run page's passkey section in a real browser: the newest checkpoint's
    /// heatmap with exact values on hover, accuracy against length and step, the downloads, and each task's job.
    @Test func thePageShowsPasskeyRetrieval() async throws {
        guard let chromium = BrowserTests.browser() else { return }
        let scratch = try ScratchFolder("passkey-browser")
        defer { scratch.remove() }
        let runs = try scratch.demoRuns(methods: ["alibi"], steps: [500, 1000])
        let server = try await ServeProcess.start(
            [
                runs, "--data", Repository.kjvValidation, "--quiet-seconds", "0", "--lengths", "1x,4x,8x", "--budget",
                "1024", "--tasks", "perplexity,passkey", "--bytes", "--trials", "2", "--depths", "0,50,100",
            ], in: scratch)
        // 2 checkpoints × (3 perplexity lengths + 3 lengths × 3 depths).
        _ = try await poll(for: 300, every: .milliseconds(200)) {
            try JSONValue.parse(try await server.get("/api/version").body)["results"]?.number == 24
        }
        let base = "http://127.0.0.1:\(server.port)/"
        let (status, dom, log) = try await Executable.run(
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
                "--user-data-dir=\(scratch.path("chromium"))", "--virtual-time-budget=10000", "--dump-dom",
                base + "#/run/alibi",
            ], tool: chromium, in: scratch)
        #expect(status == 0)
        let console = log.split(separator: "\n").filter { $0.contains(":CONSOLE") }
        #expect(console.isEmpty, "\(console.joined(separator: "\n"))")
        #expect(dom.contains(#"data-ready="true""#))
        #expect(dom.contains("<h2>Passkey retrieval</h2>"))
        let heatmap = dom.components(separatedBy: "id=\"passkey-heatmap\"").last ?? ""
        #expect(heatmap.contains("passkey retrieval: alibi step 1000"), "the newest checkpoint by default")
        // Nine cells: three lengths × three depths; 1× cannot hold the prompt and says so on hover.
        #expect(heatmap.components(separatedBy: "<title>length 256, depth 50%: accuracy").count == 2)
        #expect(heatmap.contains("the prompt without filler takes 247 tokens, more than 64"))
        #expect(dom.contains("alibi: passkey retrieval by length") && dom.contains("by training step"))
        #expect(dom.contains("task=passkey&amp;format=csv"))
        #expect(dom.contains("passkey done") && dom.contains("perplexity done"), "each task's job in the table")
        #expect(try await server.stop() == 0)
    }
}
