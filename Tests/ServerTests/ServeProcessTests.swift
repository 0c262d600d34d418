import Foundation
import TestSupport
import Testing

/// A running `extrapolate serve` process and what it printed.
struct ServeProcess {
    let process: Process
    let scratch: ScratchFolder
    let port: Int

    /// Starts `serve` on a free port and waits for its "serving http://…" line.
    static func start(
        _ arguments: [String], environment: [String: String] = [:], in scratch: ScratchFolder
    ) async throws -> ServeProcess {
        let process = try Executable.start(
            ["serve"] + arguments + ["--listen", "127.0.0.1:0"]
                + (arguments.contains("--store") ? [] : ["--store", scratch.path("results.sqlite")]),
            environment: environment, in: scratch)
        var port: Int?
        _ = try await poll(for: 60) {
            let errors = (try? String(contentsOfFile: scratch.path("stderr"), encoding: .utf8)) ?? ""
            if let range = errors.range(of: #"serving http://127\.0\.0\.1:(\d+)/"#, options: .regularExpression) {
                port = Int(errors[range].split(separator: ":").last!.dropLast())!
            }
            return port != nil || !process.isRunning
        }
        if let port { return ServeProcess(process: process, scratch: scratch, port: port) }
        let pid = process.processIdentifier
        let stacks = process.isRunning ? try await onOwnThread { ThreadStacks.of(pid) } : "(it exited)"
        process.terminate()
        let errors = (try? String(contentsOfFile: scratch.path("stderr"), encoding: .utf8)) ?? ""
        Issue.record(
            "serve did not start: \(errors.prefix(1500))\n…\n\(errors.suffix(1500))\nits threads:\n\(stacks)")
        throw CancellationError()
    }

    func get(_ path: String) async throws -> TestServer.Reply {
        try await HTTP.request(port: port, path: path, method: "GET", headers: [:], body: nil)
    }

    /// SIGTERM, then waits for the exit; returns its status.
    func stop() async throws -> Int32 {
        kill(process.processIdentifier, SIGTERM)
        let end = Date().addingTimeInterval(30)
        while process.isRunning, Date() < end { try await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            Issue.record("serve ignored SIGTERM for 30 s")
        }
        process.waitUntilExit()
        return process.terminationStatus
    }
}

/// `serve` as a real process: refusals at start, readiness for systemd, signals.
@Suite(.serialized) struct ServeProcesses {
    @Test func aBusyPortIsOneClearLineAndNothingElseStarts() async throws {
        let scratch = try ScratchFolder("busy")
        defer { scratch.remove() }
        let runs = try scratch.demoRuns()
        // Hold a port.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                try #require(bind(fd, $0, length) == 0 && listen(fd, 1) == 0)
                try #require(getsockname(fd, $0, &length) == 0)
            }
        }
        let port = Int(UInt16(bigEndian: address.sin_port))
        let (status, _, errors) = try await Executable.run(
            [
                "serve", runs, "--data", Repository.kjvValidation, "--listen", "127.0.0.1:\(port)", "--store",
                scratch.path("results.sqlite"),
            ], in: scratch)
        #expect(status != 0)
        // A `note:` on the kernels (when the environment pins a weaker OpenBLAS core) may come first.
        let lines = errors.split(separator: "\n").filter { !$0.hasPrefix("note:") }
        #expect(lines.count == 1 && lines[0].contains("127.0.0.1:\(port) is already in use"), "\(errors)")
        // Refused before the store was opened: nothing was evaluated.
        #expect(!FileManager.default.fileExists(atPath: scratch.path("results.sqlite")))
    }

    @Test func anyAddressButLoopbackNeedsAToken() async throws {
        let scratch = try ScratchFolder("token")
        defer { scratch.remove() }
        let runs = try scratch.demoRuns()
        let arguments = ["serve", runs, "--data", Repository.kjvValidation, "--store", scratch.path("results.sqlite")]
        let (status, _, errors) = try await Executable.run(arguments + ["--listen", "0.0.0.0:0"], in: scratch)
        #expect(status == 64, "\(errors)")
        #expect(errors.contains("without a token") && errors.contains("--token"), "\(errors)")
        #expect(errors.split(separator: "\n").filter { !$0.hasPrefix("note:") }.count == 1, "one line: \(errors)")
        let (short, _, shortErrors) = try await Executable.run(
            arguments + ["--listen", "0.0.0.0:0", "--token", "abc"], in: scratch)
        #expect(short == 64 && shortErrors.contains("at least 8"), "\(shortErrors)")
        let (bad, _, badErrors) = try await Executable.run(arguments + ["--listen", "localhost"], in: scratch)
        #expect(bad == 64 && badErrors.contains("is not HOST:PORT"), "\(badErrors)")
        // With the token from the environment it starts, and wants it.
        let server = try await ServeProcess.start(
            [runs, "--data", Repository.kjvValidation, "--listen", "0.0.0.0:0"],
            environment: ["EXTRAPOLATE_TOKEN": "a-long-enough-token"], in: scratch)
        #expect(try await server.get("/api/runs").status == 401)
        #expect(try await server.get("/healthz").status == 200)
        #expect(try await server.stop() == 0)
    }

    @Test func tellsSystemdItIsReadyAndStopsCleanlyOnSIGTERM() async throws {
        let scratch = try ScratchFolder("notify")
        defer { scratch.remove() }
        let runs = try scratch.demoRuns()
        // The notify socket systemd would create.
        let socketPath = scratch.path("notify.sock")
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(socketPath.utf8) + [0]) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        try #require(bound == 0)
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        func receive() -> String {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = recv(fd, &buffer, buffer.count, 0)
            return n > 0 ? String(decoding: buffer[..<n], as: UTF8.self) : ""
        }
        let server = try await ServeProcess.start(
            [runs, "--data", Repository.kjvValidation, "--quiet-seconds", "0"],
            environment: ["NOTIFY_SOCKET": socketPath], in: scratch)
        let ready = receive()
        #expect(ready.contains("READY=1") && ready.contains("STATUS=serving http://127.0.0.1:\(server.port)/"))
        #expect(try await server.get("/healthz").status == 200)
        #expect(try await server.stop() == 0)
        #expect(receive().contains("STOPPING=1"))
        let errors = try String(contentsOfFile: scratch.path("stderr"), encoding: .utf8)
        #expect(errors.contains("stopped"), "\(errors.suffix(1000))")
    }
}

/// The page in a real browser (Debian's headless chromium): it loads, draws the demo's curves with exactly the
/// API's numbers, logs nothing to the console; a screenshot is kept as a CI artifact.
@Suite(.serialized) struct BrowserTests {
    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    /// chromium's path, or `nil` after saying the test is skipped.
    static func browser() -> String? {
        if chromium == nil {
            print("BrowserTests skipped: no chromium (apt-get install chromium); .ci/run installs it")
        }
        return chromium
    }

    @Test func thePageDrawsTheAPIsCurves() async throws {
        guard let chromium = Self.browser() else { return }
        let scratch = try ScratchFolder("browser")
        defer { scratch.remove() }
        let runs = try scratch.demoRuns(methods: ["alibi", "rotary", "t5"], steps: [500, 2000])
        let server = try await ServeProcess.start(
            [runs, "--data", Repository.kjvValidation, "--quiet-seconds", "0", "--lengths", "1x,2x,4x,16x"],
            in: scratch)
        // Wait for every result: 3 runs × 2 checkpoints × 4 lengths.
        _ = try await poll(for: 300, every: .milliseconds(200)) {
            try JSONValue.parse(try await server.get("/api/version").body)["results"]?.number == 24
        }
        let page = "http://127.0.0.1:\(server.port)/"
        let common = [
            "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
            "--user-data-dir=\(scratch.path("chromium"))", "--virtual-time-budget=10000",
        ]
        let (status, dom, log) = try await Executable.run(common + ["--dump-dom", page], tool: chromium, in: scratch)
        #expect(status == 0, "\(log.suffix(2000))")
        // The console is silent: no script error, no failed request.
        let console = log.split(separator: "\n").filter { $0.contains(":CONSOLE") }
        #expect(console.isEmpty, "\(console.joined(separator: "\n"))")
        #expect(dom.contains(#"data-ready="true""#), "the page never finished rendering")
        // The overview chart's points, series by series, against the API's newest curves.
        let chart = try #require(
            dom.range(of: #"<div class="chart" id="overview-chart">"#).map { String(dom[$0.upperBound...]) })
        let drawn = Self.points(in: String(chart[..<(chart.range(of: "</svg>")?.upperBound ?? chart.endIndex)]))
        let curves = try JSONValue.parse(try await server.get("/api/curves?newest=true").body)["curves"]?.array ?? []
        #expect(curves.count == 3 && drawn.count == 3)
        for curve in curves {
            let name = "\(curve["run"]?.string ?? "") (step \(Int(curve["step"]?.number ?? 0)))"
            let expected = (curve["points"]?.array ?? []).map { ($0["multiple"]!.number!, $0["perplexity"]!.number!) }
            let actual = try #require(drawn[name], "no series \(name) among \(drawn.keys.sorted())")
            #expect(actual.count == expected.count)
            for (a, e) in zip(actual, expected) {
                #expect(a.0 == e.0 && abs(a.1 - e.1) <= 1e-9 * e.1, "\(name): drawn \(a), API \(e)")
            }
        }
        // The screenshot, kept for CI (and for looking at).
        let artifacts = Repository.root.appendingPathComponent(".build/artifacts")
        try FileManager.default.createDirectory(at: artifacts, withIntermediateDirectories: true)
        let shot = artifacts.appendingPathComponent("web-page.png").path
        let (shotStatus, _, _) = try await Executable.run(
            common + ["--window-size=1280,1700", "--screenshot=\(shot)", page], tool: chromium, in: scratch)
        #expect(shotStatus == 0 && FileManager.default.fileExists(atPath: shot))
        print("BrowserTests: screenshot at \(shot)")
        #expect(try await server.stop() == 0)
    }

    @Test func newResultsAppearWithoutAReload() async throws {
        guard let chromium = Self.browser() else { return }
        let scratch = try ScratchFolder("live")
        defer { scratch.remove() }
        let runs = try scratch.demoRuns(methods: ["alibi", "rotary", "t5"], steps: [500, 1000, 2000])
        // Nothing is read for 2 s: the page first loads with no results, then must redraw as they arrive.
        let server = try await ServeProcess.start(
            [runs, "--data", Repository.kjvValidation, "--quiet-seconds", "2", "--lengths", "1x,2x,4x,16x"],
            in: scratch)
        #expect(try JSONValue.parse(try await server.get("/api/version").body)["results"]?.number == 0)
        // A long virtual-time budget: the page keeps polling while the daemon works in real time.
        let (status, dom, _) = try await Executable.run(
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(scratch.path("chromium"))",
                "--virtual-time-budget=900000", "--dump-dom", "http://127.0.0.1:\(server.port)/",
            ], tool: chromium, in: scratch)
        #expect(status == 0)
        let renders = dom.range(of: #"data-renders="(\d+)""#, options: .regularExpression).map {
            Int(dom[$0].filter(\.isNumber)) ?? 0
        }
        #expect((renders ?? 0) >= 2, "the page drew \(renders ?? 0) time(s): it never redrew for new results")
        #expect(dom.contains("<circle"), "no point was drawn")
        #expect(try await server.stop() == 0)
    }

    /// `data-series` → its circles' (data-x, data-y), in order.
    static func points(in svg: String) -> [String: [(Double, Double)]] {
        var found: [String: [(Double, Double)]] = [:]
        for group in svg.components(separatedBy: #"<g class="series" data-series=""#).dropFirst() {
            let name = String(group[..<group.firstIndex(of: "\"")!])
                .replacingOccurrences(of: "&amp;", with: "&").replacingOccurrences(of: "&quot;", with: "\"")
            var points: [(Double, Double)] = []
            for circle in group.components(separatedBy: "<circle ").dropFirst() {
                func attribute(_ key: String) -> Double? {
                    guard let start = circle.range(of: "\(key)=\"") else { return nil }
                    let rest = circle[start.upperBound...]
                    return Double(rest[..<rest.firstIndex(of: "\"")!])
                }
                if let x = attribute("data-x"), let y = attribute("data-y") { points.append((x, y)) }
            }
            found[name] = points
        }
        return found
    }
}

/// Service/extrapolate.service passes `systemd-analyze verify` (with ExecStart pointing at the built executable,
/// which the tool checks exists); skipped with a printed reason where systemd-analyze is absent.
@Suite struct SystemdUnit {
    @Test func theUnitVerifies() async throws {
        let tool = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        guard let tool, let binary = Executable.path else {
            print("SystemdUnit skipped: no systemd-analyze here (apt-get install systemd)")
            return
        }
        let scratch = try ScratchFolder("unit")
        defer { scratch.remove() }
        let unit = try String(
            contentsOf: Repository.root.appendingPathComponent("Service/extrapolate.service"), encoding: .utf8)
        #expect(
            unit.contains("Type=notify") && unit.contains("Restart=on-failure") && unit.contains("ProtectSystem=strict")
        )
        #expect(unit.contains("ReadWritePaths=/var/lib/extrapolate"))
        try unit.replacingOccurrences(of: "/usr/local/bin/extrapolate", with: binary).write(
            toFile: scratch.path("extrapolate.service"), atomically: true, encoding: .utf8)
        let (status, output, errors) = try await Executable.run(
            ["verify", scratch.path("extrapolate.service")], tool: tool, in: scratch)
        #expect(status == 0 && errors.isEmpty && output.isEmpty, "\(output)\(errors)")
    }
}
