import Evaluation
import Foundation
import Reports
import Testing
import TestSupport
#if canImport(FoundationXML)
    import FoundationXML
#endif

/// A sweep of three checkpoints of the ALiBi demo run, given in glob order (1000, 2000, 500).
func demoSweep(
    protocol evaluationProtocol: EvaluationProtocol = .nonoverlapping, budget: Int = 512,
    lengths: String = "1x,2x,4x"
) throws -> SweepResult {
    let paths = [1000, 2000, 500].map { Repository.demo("alibi", step: $0) }
    let settings = EvaluationSettings(
        data: DataReference(path: Repository.kjvValidation), lengths: try LengthGrid(parsing: lengths),
        evaluationProtocol: evaluationProtocol, budget: budget, resamples: 200)
    let runner = SweepRunner(settings: settings)
    let checkpoints = try paths.map { path throws(EvaluationError) in try SweepCheckpoint.load(path) }
    let data = try EvaluationData.load(settings, longest: runner.longest(checkpoints))
    return try runner.run(checkpoints, data: data)
}

@Suite("Reports: tables, CSV, JSON and plots")
struct ReportsTests {
    @Test("Checkpoints of one run are series of their own, ordered by step, and every point says which it is")
    func checkpointsAreSeries() throws {
        let result = try demoSweep()
        #expect(result.checkpoints.map(\.step) == [500, 1000, 2000])
        #expect(result.checkpoints.allSatisfy { $0.run == "alibi" })
        #expect(result.points.map(\.step) == [500, 500, 500, 1000, 1000, 1000, 2000, 2000, 2000])
        let report = SweepReport(result)
        let table = report.table()
        for step in [500, 1000, 2000] { #expect(table.contains("alibi step \(step)")) }
        let svg = report.perplexitySVG()
        #expect(svg.components(separatedBy: "<polyline").count - 1 == 3, "one line per checkpoint, not one zig-zag")
        #expect(XMLParser(data: Data(svg.utf8)).parse())
        let decoded = try ReportJSON.decode(SweepResult.self, from: Data(try report.json().utf8))
        #expect(decoded == result)
        let json = try JSONSerialization.jsonObject(with: Data(try report.json().utf8)) as? [String: Any]
        let first = (json?["points"] as? [[String: Any]])?.first
        #expect(first?["perplexity"] is Double && first?["meanNLL"] is Double && first?["tokens"] as? Int == 512)
        #expect(first?["run"] as? String == "alibi" && first?["step"] as? Int == 500)
        let csv = report.csv().split(separator: "\n")
        #expect(csv.count == 10 && csv[0] == ResultCSV.header)
    }

    @Test("Too few windows are flagged in the table and the JSON; a single window has no interval, and says why")
    func smallSamples() throws {
        let result = try demoSweep(budget: 256, lengths: "1x,4x")
        let at4x = try #require(result.points.first { $0.length == 256 })
        #expect(at4x.interval == nil && at4x.warnings.first?.contains("only 1 window") == true)
        let at1x = try #require(result.points.first { $0.length == 64 })
        #expect(at1x.interval != nil && at1x.warnings.first?.contains("only 4 windows") == true)
        #expect(SweepReport(result).table().contains("too few to trust"))
    }

    @Test("Position buckets stop at the window and say which only the first window reaches under sliding:S")
    func positionBuckets() throws {
        let result = try demoSweep(protocol: .sliding(stride: 16), budget: 512, lengths: "1x")
        let buckets = try #require(result.points.first?.result?.positions)
        #expect(buckets.last?.upper == 64, "the last bucket holds positions up to 63 only")
        // Positions before L − S = 48 come from the first window alone.
        #expect(buckets.filter(\.firstWindowsOnly).map(\.lower) == [0, 1, 3, 7, 15])
        #expect(buckets.filter { !$0.firstWindowsOnly }.allSatisfy { $0.upper > 48 })
        let svg = SweepReport(result).positionsSVG()
        #expect(svg.contains("fill=\"white\"") && svg.contains("sliding:16"))
    }

    @Test("Plots: round ticks on log axes, 'log' in the axis labels, the protocol in the title, intervals as bands")
    func plots() throws {
        #expect(Plot.ticks(low: 64, high: 1024, log: true, base2: true) == [64, 128, 256, 512, 1024])
        #expect(Plot.ticks(low: 3.2, high: 60, log: true) == [5, 10, 20, 50])
        let narrow = Plot.ticks(low: 4.1, high: 4.9, log: true)  // no 1–9 × 10^k inside: round linear values instead
        #expect(narrow.count >= 3 && narrow.allSatisfy { $0 >= 4.1 && $0 <= 4.9 })
        #expect(Plot.ticks(low: 0.13, high: 0.92, log: false) == [0.2, 0.4, 0.6000000000000001, 0.8])
        let svg = SweepReport(try demoSweep()).perplexitySVG()
        #expect(svg.contains("log scale") && svg.contains("nonoverlapping") && svg.contains("<polygon"))
    }
}
