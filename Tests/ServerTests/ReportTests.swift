import Foundation
import Logging
import Reports
import ResultStore
import Service
import TestSupport
import Testing

/// The nightly report: `extrapolate report` on a real store, what changed between two reports, the notify command.
@Suite(.serialized) struct NightlyReports {
    @Test func writesSelfContainedFilesAndWhatChangedSinceTheLastReport() async throws {
        let fixture = try await EvaluatedStore("report")
        defer { fixture.remove() }
        let out = fixture.scratch.path("reports")
        let (status, text, errors) = try await Executable.run(
            ["report", "--store", fixture.configuration.store, "--out", out], in: fixture.scratch)
        #expect(status == 0, "\(errors)")
        #expect(text.contains("Alerts: ") && text.contains("alibi [nonoverlapping] step 1000"))
        let html = try String(contentsOfFile: out + "/report.html", encoding: .utf8)
        // Self-contained: inline SVG, no script, nothing fetched (the only URL is SVG's namespace).
        #expect(
            html.contains("<svg") && !html.contains("<script") && !html.contains("src=")
                && !html.contains("<link") && !html.contains("href=\"http"))
        #expect(html.contains("the first report in this folder"))
        let csv = try String(contentsOfFile: out + "/report.csv", encoding: .utf8)
        #expect(csv.split(separator: "\n").count == 13)  // header + 12 results
        let first = try ReportJSON.decode(
            NightlyReport.Content.self, from: Data(contentsOf: URL(fileURLWithPath: out + "/report.json")))
        #expect(first.previousReport == nil && first.newest.count == 2 && first.changes.count == 2)
        #expect(first.failures.contains { $0.run == "broken" && $0.state == "invalid" })
        #expect(first.evaluatedCheckpoints.count == 4)

        // Training goes on: alibi's step 2000 arrives and is evaluated.
        try FileManager.default.copyItem(
            atPath: Repository.demo("alibi", step: 2000),
            toPath: fixture.scratch.path("runs/alibi/step-2000.safetensors"))
        _ = try await Daemon(configuration: fixture.configuration, store: fixture.store, logger: .quiet).runOnce()
        let (again, _, moreErrors) = try await Executable.run(
            ["report", "--store", fixture.configuration.store, "--out", out], in: fixture.scratch)
        #expect(again == 0, "\(moreErrors)")
        let second = try ReportJSON.decode(
            NightlyReport.Content.self, from: Data(contentsOf: URL(fileURLWithPath: out + "/report.json")))
        #expect(second.previousReport != nil)
        // Only alibi changed: step 1000 → step 2000, with the change at each length from the two curves.
        #expect(second.changes.map(\.run) == ["alibi"])
        let change = try #require(second.changes.first)
        #expect(
            change.previous == "step 1000" && change.current == "step 2000" && change.newCheckpoints == ["step 2000"])
        let rows = try await fixture.store.results(run: "alibi").map(StoredResultsReport.Row.init)
        for length in change.lengths {
            let before = try #require(rows.first { $0.step == 1000 && $0.multiple == length.multiple }?.perplexity)
            let now = try #require(rows.first { $0.step == 2000 && $0.multiple == length.multiple }?.perplexity)
            #expect(length.previous == before && length.current == now)
            #expect(abs((length.change ?? 0) - (now / before - 1)) < 1e-12)
        }
    }

    @Test func theNotifyCommandGetsTheReportFolder() async throws {
        let fixture = try await EvaluatedStore("notify-report", methods: ["alibi"])
        defer { fixture.remove() }
        var settings = ReportSettings()
        let marker = fixture.scratch.path("notified")
        settings.notifyCommand = "printf '%s|%s' \"$1\" \"$EXTRAPOLATE_REPORT\" > '\(marker)'"
        let folder = fixture.scratch.path("nightly")
        await ReportScheduler.write(settings: settings, store: fixture.store, folder: folder, logger: .quiet)
        #expect(try String(contentsOfFile: marker, encoding: .utf8) == "\(folder)|\(folder)")
        #expect(FileManager.default.fileExists(atPath: folder + "/report.html"))
    }

    @Test func theScheduleIsTheNextLocalTimeOfDay() throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = try #require(TimeZone(identifier: "Europe/Paris"))
        let time = try #require(TimeOfDay(parsing: "03:00"))
        // 2026-12-02 02:30 in Paris (01:30 UTC) → 03:00 the same day; 03:30 → 03:00 the next day.
        let early = Date(timeIntervalSince1970: 1_796_175_000)  // 2026-12-02T01:30:00Z
        #expect(time.next(after: early, calendar: calendar) == Date(timeIntervalSince1970: 1_796_176_800))
        #expect(
            time.next(after: early.addingTimeInterval(3600), calendar: calendar)
                == Date(timeIntervalSince1970: 1_796_176_800 + 86400))
        #expect(TimeOfDay(parsing: "24:00") == nil && TimeOfDay(parsing: "3") == nil)
    }

    @Test func reportAndAlertSettingsComeFromTheConfiguration() throws {
        let scratch = try ScratchFolder("report-config")
        defer { scratch.remove() }
        let file = scratch.path("watch.toml")
        try """
        [evaluation]
        data = "\(Repository.kjvValidation)"
        [[runs]]
        folder = "runs"
        [report]
        time = "04:15"
        notify-command = "true"
        notify-timeout = 5
        [alerts]
        regression = 0.2
        ratio = 3
        """.write(toFile: file, atomically: true, encoding: .utf8)
        let configuration = try DaemonConfiguration.load(file: file)
        #expect(configuration.report.schedule == TimeOfDay(parsing: "04:15"))
        #expect(configuration.report.notifyTimeout == 5)
        #expect(configuration.report.thresholds == AlertThresholds(regression: 0.2, ratio: 3, ratioMultiple: 16))
        #expect(configuration.report.folder(localFolder: "/var/lib/x") == "/var/lib/x/reports")
        try "[[runs]]\nfolder = \"runs\"\ndata = \"x\"\n[report]\ntime = \"25:00\"\n".write(
            toFile: file, atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError.self) { try DaemonConfiguration.load(file: file) }
    }
}

/// `extrapolate export tensorboard` on a real store, read back by the `tensorboard` package (opt-in: skipped with a
/// printed reason when python3 cannot import it; `pip install tensorboard`).
@Suite(.serialized) struct TensorBoardExportTests {
    @Test func tensorBoardReadsTheExportedScalars() async throws {
        let fixture = try await EvaluatedStore("tensorboard", passkey: true)
        defer { fixture.remove() }
        let logdir = fixture.scratch.path("tb")
        let (status, _, errors) = try await Executable.run(
            ["export", "tensorboard", "--store", fixture.configuration.store, "--out", logdir], in: fixture.scratch)
        #expect(status == 0, "\(errors)")
        #expect(errors.contains("scalars in 2 runs"), "\(errors)")
        let files = try FileManager.default.contentsOfDirectory(atPath: logdir + "/alibi")
        #expect(files.count == 1 && files[0].hasPrefix("events.out.tfevents."))
        let reader = """
            import json, os, sys
            from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
            out = {}
            for run in sorted(os.listdir(sys.argv[1])):
                folder = os.path.join(sys.argv[1], run)
                for name in os.listdir(folder):
                    for event in EventFileLoader(os.path.join(folder, name)).Load():
                        for value in event.summary.value:
                            out.setdefault(run, []).append([event.step, value.tag, value.tensor.float_val[0]])
            print(json.dumps(out))
            """
        try reader.write(toFile: fixture.scratch.path("read.py"), atomically: true, encoding: .utf8)
        let (probe, _, _) = try await Executable.run(
            ["python3", "-c", "import tensorboard"], tool: "/usr/bin/env", in: fixture.scratch)
        guard probe == 0 else {
            print(
                "TensorBoardExportTests: read-back skipped: python3 cannot import tensorboard (pip install tensorboard)"
            )
            return
        }
        let (read, output, readErrors) = try await Executable.run(
            ["python3", fixture.scratch.path("read.py"), logdir], tool: "/usr/bin/env", in: fixture.scratch)
        #expect(read == 0, "\(readErrors)")
        let scalars = try JSONDecoder().decode([String: [[JSONScalar]]].self, from: Data(output.utf8))
        let rows = try await fixture.store.results(run: nil).map(StoredResultsReport.Row.init)
        for row in rows where row.passkey == nil {
            let k = row.multiple == row.multiple.rounded() ? String(Int(row.multiple)) : String(row.multiple)
            let found = scalars[row.run]?.first {
                $0[0].number == Double(row.step ?? -1) && $0[1].text == "extrapolation/ppl_\(k)x"
            }
            let value = try #require(found?[2].number, "no scalar for \(row.run) step \(row.step ?? -1) at \(k)x")
            #expect(Float(value) == Float(row.perplexity ?? 0))
        }
        // Passkey accuracy at 4× (the shorter lengths cannot hold the prompt), pooled over depths.
        let passkey = StoredPasskeyReport(rows).byLength
        #expect(passkey.count == 4)
        for entry in passkey {
            let found = scalars[entry.run]?.first {
                $0[0].number == Double(entry.step ?? -1) && $0[1].text == "passkey/accuracy_4x"
            }
            let value: Double? = found?[2].number
            #expect(value.map { Float($0) } == Float(entry.accuracy), "\(entry.run) step \(entry.step ?? -1)")
        }
        // Ratios too: 2 runs × 2 steps × (2 ratios) next to 12 perplexities, and 4 accuracies.
        let written: Int = scalars.values.map(\.count).reduce(0, +)
        #expect(written == 24)
    }

    enum JSONScalar: Decodable {
        case number(Double)
        case string(String)
        var number: Double? { if case .number(let n) = self { n } else { nil } }
        var text: String? { if case .string(let s) = self { s } else { nil } }
        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let n = try? container.decode(Double.self) {
                self = .number(n)
            } else {
                self = .string(try container.decode(String.self))
            }
        }
    }
}
