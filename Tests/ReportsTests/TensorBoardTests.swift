import Foundation
import Reports
import TestSupport
import Testing

/// TensorBoard event files against the `tensorboard` package's own writer (Tests/Fixtures/make_tensorboard.py).
@Suite struct TensorBoardFiles {
    @Test func crc32cMatchesTheStandardCheckValues() {
        // RFC 3720 B.4 and the CRC catalogue's check value.
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xff, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum(Array(0..<32)) == 0x46DD_794E)
    }

    struct Golden: Decodable {
        struct Version: Decodable { var wall_time: Double }
        struct Scalar: Decodable {
            var wall_time: Double
            var step: Int
            var values: [[Entry]]
        }
        enum Entry: Decodable {
            case tag(String)
            case value(Double)
            init(from decoder: any Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let text = try? container.decode(String.self) {
                    self = .tag(text)
                } else {
                    self = .value(try container.decode(Double.self))
                }
            }
        }
        var file_version: Version
        var scalars: [Scalar]
    }

    @Test func eventsAreByteForByteWhatTensorBoardWrites() throws {
        let folder = Repository.fixtures.appendingPathComponent("tensorboard")
        let golden = try JSONDecoder().decode(
            Golden.self, from: Data(contentsOf: folder.appendingPathComponent("golden.json")))
        var bytes = TensorBoardEvents.fileVersion(wallTime: golden.file_version.wall_time)
        for scalar in golden.scalars {
            let values = scalar.values.map { pair -> (tag: String, value: Float) in
                guard case .tag(let tag) = pair[0], case .value(let value) = pair[1] else { return ("", 0) }
                return (tag, Float(value))
            }
            bytes += TensorBoardEvents.scalars(wallTime: scalar.wall_time, step: scalar.step, values: values)
        }
        let expected = [UInt8](try Data(contentsOf: folder.appendingPathComponent("golden.tfevents")))
        #expect(bytes.count == expected.count)
        if let first = zip(bytes, expected).enumerated().first(where: { $0.element.0 != $0.element.1 }) {
            Issue.record("first difference at byte \(first.offset)")
        }
    }
}
