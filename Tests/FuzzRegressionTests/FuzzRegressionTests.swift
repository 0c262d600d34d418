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
            // Off the test pool, with minutes to answer: the server's tasks share two threads with the other tests.
            let answer = try #require(
                try await onOwnThread { server.exchange(bytes, deadline: 300) }, "\(input): no connection")
            // A request the server can parse gets a status line; garbage may be closed without one.
            if bytes.starts(with: Array("GET /".utf8)) {
                #expect(answer.starts(with: Array("HTTP/1.1 ".utf8)), "\(input): no answer")
            }
        }
    }

    @Test func everyKeptRequestIsAnsweredByTheRouter() async throws {
        let inputs = Self.inputs("api")
        #expect(inputs.count >= 3, "Tests/fuzz/corpus/api should hold the seeds")
        let api = try await APIFuzzResponder.start()
        var answered = 0
        for input in inputs {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: input)))
            guard let (status, _) = await api.respond(bytes) else { continue }
            answered += 1
            #expect((100..<600).contains(status), "\(input): status \(status)")
            #expect(status != 500, "\(input): a request the server failed on")
        }
        #expect(answered >= 3, "the seeds are requests")
    }

    @Test func theRouterAnswersTheSeedsAsTheServerDoes() async throws {
        let api = try await APIFuzzResponder.start()
        let token = HTTPFuzzServer.token
        let cases: [(String, Int)] = [
            ("GET /api/runs HTTP/1.1\r\nAuthorization: Bearer \(token)\r\n\r\n", 200),
            ("GET /api/runs HTTP/1.1\r\nAuthorization: Bearer wrong\r\n\r\n", 401),
            ("GET /api/nothing HTTP/1.1\r\nAuthorization: Bearer \(token)\r\n\r\n", 404),
            ("GET /healthz HTTP/1.1\r\n\r\n", 200),
            (
                "POST /api/worker HTTP/1.1\r\nAuthorization: Bearer \(token)\r\nContent-Length: 11\r\n\r\n{\"paused\":1}",
                400
            ),
        ]
        for (request, expected) in cases {
            let answer = await api.respond(Array(request.utf8))
            #expect(answer?.status == expected, "\(request.prefix(40)): \(String(describing: answer))")
        }
        #expect(APIFuzzResponder.request(Array("GE T / HTTP/1.1\r\n\r\n".utf8)) == nil)
    }
}
