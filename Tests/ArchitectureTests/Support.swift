import Foundation
import Testing

/// The committed fixtures folder (`Tests/Fixtures`).
let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures")

/// Expects two sequences to agree within `tolerance` (relative to magnitude when `relative`), printing the
/// largest difference and where it is when they do not.
func expectClose(
    _ actual: [Double], _ expected: [Double], tolerance: Double, relative: Bool = false,
    _ comment: String = "", sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(actual.count == expected.count, "\(comment): \(actual.count) values, expected \(expected.count)",
            sourceLocation: sourceLocation)
    var worst = (difference: 0.0, index: -1)
    for (index, (a, e)) in zip(actual, expected).enumerated() {
        let difference = relative ? abs(a - e) / max(abs(e), 1e-300) : abs(a - e)
        if difference > worst.difference { worst = (difference, index) }
    }
    #expect(worst.difference <= tolerance,
            "\(comment): max |Δ| \(worst.difference) at index \(worst.index) exceeds \(tolerance)",
            sourceLocation: sourceLocation)
}

/// Reads a JSON fixture.
func loadJSON<T: Decodable>(_ type: T.Type, _ relativePath: String) throws -> T {
    try JSONDecoder().decode(T.self, from: Data(contentsOf: fixtures.appendingPathComponent(relativePath)))
}
