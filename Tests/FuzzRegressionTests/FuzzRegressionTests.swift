import Foundation
import FuzzTargets
import TestSupport
import Testing

/// Every input of the fuzz corpus (`Tests/fuzz/corpus/TARGET/`) and every input a campaign found a crash, a hang or
/// an allocation out of bounds with (`Tests/fuzz/regressions/TARGET/`, minimised), run through its target in this
/// process without the fuzzer: a parser that crashes on one fails the run. The fuzzer itself: `Tests/fuzz/run.sh`.
@Suite struct FuzzCorpusReplay {
    static let root = Repository.root.path + "/Tests/fuzz"

    static func inputs(_ target: String) -> [String] {
        ["corpus", "regressions"].flatMap { kind -> [String] in
            let folder = "\(root)/\(kind)/\(target)"
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
            return names.sorted().map { "\(folder)/\($0)" }
        }
    }

    @Test(arguments: FuzzTarget.allCases) func everyKeptInputIsRefusedOrRead(target: FuzzTarget) throws {
        let inputs = Self.inputs(target.rawValue)
        #expect(inputs.count >= 3, "Tests/fuzz/corpus/\(target.rawValue) should hold the seeds")
        let scratch = FuzzScratch()
        defer { scratch.remove() }
        for input in inputs {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: input)))
            target.run(bytes, scratch: scratch)
        }
    }

    @Test func everyKeptRequestIsAnswered() async throws {
        let inputs = Self.inputs("http")
        #expect(inputs.count >= 3, "Tests/fuzz/corpus/http should hold the seeds")
        let server = try await HTTPFuzzServer.start()
        for input in inputs {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: input)))
            let answer = try #require(server.exchange(bytes), "\(input): no connection")
            // A request the server can parse gets a status line; garbage may be closed without one.
            if bytes.starts(with: Array("GET /".utf8)) {
                #expect(answer.starts(with: Array("HTTP/1.1 ".utf8)), "\(input): no answer")
            }
        }
    }
}
