import Evaluation
import Foundation
import Logging
import TestSupport
import Testing

@testable import Service

@Suite struct Configuration {
    func load(_ text: String, overrides: EvaluationOverrides = EvaluationOverrides()) throws -> DaemonConfiguration {
        let scratch = try ScratchFolder("config")
        defer { scratch.remove() }
        let file = scratch.path("watch.toml")
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        return try DaemonConfiguration.load(file: file, overrides: overrides)
    }

    func error(_ text: String) -> String {
        do {
            _ = try load(text)
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test func severalRunsEachWithItsOwnSettings() throws {
        let configuration = try load(
            """
            # two runs
            store = "/var/lib/extrapolate/results.sqlite"
            quiet-seconds = 2.5
            memory-limit = "16G"

            [evaluation]
            data = "/data/valid.tokens.zst"
            lengths = "1x,2x,4x"
            bootstrap = 200

            [[runs]]
            folder = "/runs/alibi"

            [[runs]]
            folder = "/runs/rotary"   # rotary gets a sliding protocol and YaRN
            protocol = "sliding:256"
            extensions = [
              "yarn",
              "ntk",
            ]
            """)
        #expect(configuration.store == "/var/lib/extrapolate/results.sqlite")
        #expect(configuration.quietSeconds == 2.5)
        #expect(configuration.memoryLimit == 16 << 30)
        #expect(configuration.targets.map(\.folder) == ["/runs/alibi", "/runs/rotary"])
        let (alibi, rotary) = (configuration.targets[0].settings, configuration.targets[1].settings)
        #expect(alibi.evaluationProtocol == .nonoverlapping && alibi.resamples == 200)
        #expect(rotary.evaluationProtocol == .sliding(stride: 256) && rotary.extensions == [.yarn, .ntk])
        #expect(rotary.lengths == alibi.lengths && rotary.data.path == "/data/valid.tokens.zst")
        #expect(configuration.target(for: "/runs/rotary/step-5.safetensors")?.folder == "/runs/rotary")
        #expect(configuration.target(for: "/runs/rotary2/step-5.safetensors") == nil)
    }

    @Test func flagsWinOverTheFileAndRunsOverBoth() throws {
        var flags = EvaluationOverrides()
        flags.budget = 999
        let configuration = try load(
            """
            [evaluation]
            data = "/d.tokens.zst"
            budget = 5
            [[runs]]
            folder = "/runs/a"
            [[runs]]
            folder = "/runs/b"
            budget = 7
            """, overrides: flags)
        #expect(configuration.targets.map(\.settings.budget) == [999, 999])
    }

    @Test func relativePathsAreRelativeToTheFile() throws {
        let configuration = try load(
            """
            store = "state/results.sqlite"
            [[runs]]
            folder = "runs/a"
            data = "data/valid.tokens.zst"
            """)
        let target = try #require(configuration.targets.first)
        #expect(target.folder.hasPrefix("/") && target.folder.hasSuffix("/runs/a"))
        #expect((configuration.store as NSString).deletingLastPathComponent.hasSuffix("/state"))
        #expect(target.settings.data.path.hasSuffix("/data/valid.tokens.zst"))
    }

    @Test func badConfigurationNamesTheKey() {
        #expect(error("[[runs]]\nfolder = \"/a\"\ndata = \"/d\"\nprotocl = \"sliding:4\"").contains("runs[1].protocl"))
        #expect(error("[[runs]]\nfolder = \"/a\"\ndata = \"/d\"\nprotocol = \"rolling\"").contains("runs[1].protocol"))
        #expect(error("[[runs]]\nfolder = \"/a\"\ndata = \"/d\"\nbudget = \"many\"").contains("expected an integer"))
        #expect(error("[[runs]]\nfolder = \"/a\"").contains("no evaluation data"))
        #expect(error("[[runs]]\ndata = \"/d\"").contains("needs `folder"))
        #expect(error("quiet-seconds = -1\n[[runs]]\nfolder = \"/a\"\ndata = \"/d\"").contains("quiet-seconds"))
        #expect(error("memory-limit = \"lots\"\n[[runs]]\nfolder = \"/a\"\ndata = \"/d\"").contains("memory-limit"))
        #expect(error("store = /x\n").contains(":1:"), "a syntax error names the line")
        #expect(error("a = 1\n\nb = [1, 2\n").contains(":3:") || error("a = 1\n\nb = [1, 2\n").contains("not closed"))
        #expect(error("").contains("no folders to watch"))
        #expect(
            error("[evaluation]\ndata = \"/d\"\n[[runs]]\nfolder = \"/a\"\nbos = \"first\"").contains("--bos-token"))
    }

    @Test func tomlValues() throws {
        let values = try TOMLReader.parse(
            """
            a = "x\\ty\\u00e9"   # comment
            b = 'C:\\raw'
            c = 1_000
            d = -2.5e3
            e = true
            [t.u]
            f = [[1, 2], ["a"]]
            [[list]]
            g = 1
            [[list]]
            g = 2
            """, file: "t.toml")
        #expect(values["a"] == .string("x\tyé"))
        #expect(values["b"] == .string("C:\\raw"))
        #expect(values["c"] == .integer(1000))
        #expect(values["d"] == .float(-2500))
        #expect(values["e"] == .boolean(true))
        #expect(
            values["t"]
                == .table(["u": .table(["f": .array([.array([.integer(1), .integer(2)]), .array([.string("a")])])])]))
        #expect(values["list"] == .array([.table(["g": .integer(1)]), .table(["g": .integer(2)])]))
        #expect(throws: ConfigurationError.self) { try TOMLReader.parse("a = 1\na = 2", file: "t.toml") }
        #expect(throws: ConfigurationError.self) { try TOMLReader.parse("a = {b = 1}", file: "t.toml") }
    }

    @Test func sizes() {
        #expect(ByteSize.parse("16G") == 16 << 30)
        #expect(ByteSize.parse("512M") == 512 << 20)
        #expect(ByteSize.parse("1.5GiB") == 3 << 29)
        #expect(ByteSize.parse("2GB") == 2_000_000_000)
        #expect(ByteSize.parse("800000") == 800_000)
        #expect(ByteSize.parse("-1G") == nil && ByteSize.parse("lots") == nil)
    }
}

@Suite struct JSONLogLines {
    @Test func oneObjectPerLineWithTheMetadata() throws {
        let lines = LockedLines()
        let logger = Logger.collecting(lines)
        logger.info("result stored", metadata: ["run": "alibi", "length": "128", "nested": ["a": "b"]])
        let line = try #require(lines.all.first)
        #expect(!line.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["message"] as? String == "result stored")
        #expect(object["level"] as? String == "info" && object["run"] as? String == "alibi")
        #expect((object["nested"] as? [String: String]) == ["a": "b"])
        #expect((object["time"] as? String)?.hasSuffix("Z") == true)
    }
}
