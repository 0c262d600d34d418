import Foundation
import ResultStore
import Testing

@testable import Reports

/// Regression alerts and ratios, on curves whose perplexities are chosen by hand so that the expected alerts follow
/// from the definitions (Docs/daemon.md): a rise of more than `regression` at kL between the two newest
/// checkpoints while ppl(L) fell; ppl(kL)/ppl(L) above `ratio` at the newest checkpoint.
@Suite struct Alerts {
    func curve(run: String = "r", id: Int64, step: Int?, _ perplexities: [Double: Double]) -> ExtrapolationCurve {
        ExtrapolationCurve(
            run: run, checkpointID: id, checkpoint: "/runs/\(run)/step-\(step ?? 0).safetensors", step: step,
            checkpointState: .current, series: "nonoverlapping", evaluationProtocol: "nonoverlapping",
            trainedLength: 64, scoringHash: "s",
            points: perplexities.keys.sorted().map { k in
                .init(
                    length: Int(k * 64), multiple: k, perplexity: perplexities[k]!, meanNLL: log(perplexities[k]!),
                    tokens: 100, lower: nil, upper: nil)
            })
    }

    @Test func aRiseAtKLWhileLImprovesIsARegression() {
        let curves = [
            curve(id: 1, step: 100, [1: 10, 2: 12, 16: 40]),
            curve(id: 2, step: 200, [1: 9, 2: 14, 16: 41]),
        ]
        let alerts = Extrapolation.alerts(
            curves, thresholds: AlertThresholds(regression: 0.10, ratio: 4, ratioMultiple: 16))
        // 2L: 14/12 − 1 = 16.7 % > 10 %; 16L: 41/40 − 1 = 2.5 %: no alert. Ratio 41/9 = 4.56 > 4 (step 100: 4.0, not above).
        #expect(alerts.count == 2)
        let regression = try? #require(alerts.first { $0.kind == .regression })
        #expect(regression?.multiple == 2 && regression?.step == 200 && regression?.previousStep == 100)
        #expect(abs((regression?.value ?? 0) - (14.0 / 12 - 1)) < 1e-12)
        let ratio = try? #require(alerts.first { $0.kind == .ratio })
        #expect(ratio?.multiple == 16 && abs((ratio?.value ?? 0) - 41.0 / 9) < 1e-12 && ratio?.previousStep == nil)
        #expect(ratio?.message.contains("ppl(16L)/ppl(L) = 4.56") == true)
    }

    @Test func noRegressionWhenLGotWorseTooOrTheRiseIsSmall() {
        let worseEverywhere = [curve(id: 1, step: 100, [1: 10, 2: 12]), curve(id: 2, step: 200, [1: 11, 2: 14])]
        #expect(Extrapolation.alerts(worseEverywhere, thresholds: AlertThresholds()).isEmpty)
        let small = [curve(id: 1, step: 100, [1: 10, 2: 12]), curve(id: 2, step: 200, [1: 9, 2: 13])]  // +8.3 %
        #expect(Extrapolation.alerts(small, thresholds: AlertThresholds()).isEmpty)
        #expect(Extrapolation.alerts(small, thresholds: AlertThresholds(regression: 0.05)).count == 1)
    }

    @Test func onlyTheTwoNewestCheckpointsCountAndTheRatioSaysWhenItCrossed() {
        let curves = [
            curve(id: 1, step: 100, [1: 10, 4: 30]),  // rise to step 200 is history
            curve(id: 2, step: 200, [1: 9, 4: 45]),  // ratio 5
            curve(id: 3, step: 300, [1: 8, 4: 44]),  // ratio 5.5, no rise
        ]
        let alerts = Extrapolation.alerts(curves, thresholds: AlertThresholds(ratio: 4, ratioMultiple: 16))
        #expect(alerts.map(\.kind) == [.ratio])
        // 16L was not evaluated: the largest multiple below it (4) stands in; above 4 since step 200.
        #expect(alerts.first?.multiple == 4 && alerts.first?.previousStep == 200 && alerts.first?.step == 300)
    }

    @Test func newestIsTheHighestStepStillOnDisk() {
        var gone = curve(id: 3, step: 300, [1: 1])
        gone.checkpointState = .gone
        let newest = Extrapolation.newest([curve(id: 1, step: 100, [1: 2]), gone, curve(id: 2, step: 200, [1: 3])])
        #expect(newest.map(\.checkpointID) == [2])
        #expect(curve(id: 1, step: 1, [1: 2, 4: 6]).ratios == [1: 1, 4: 3])
    }
}
