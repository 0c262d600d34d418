import Foundation
import Service
import TestSupport
import Testing

/// The catalogue of malformed input in Docs/reliability.md, row by row: each row's command runs against the file it
/// names (built here, by name) and must end with the row's exit status (or HTTP status) and print the row's message.
///
/// `EXTRAPOLATE_CATALOGUE_PRINT=1 swift test --filter MalformedInputCatalogue` prints each row's actual status and
/// first line of output instead of failing, for writing a new row.
@Suite(.serialized) struct MalformedInputCatalogue {
    struct Row: CustomStringConvertible {
        var number: Int
        var command: String
        var status: Int
        var message: String
        var description: String { "row \(number): \(command)" }
    }

    static let printing = ProcessInfo.processInfo.environment["EXTRAPOLATE_CATALOGUE_PRINT"] == "1"

    /// The rows of the table under "## The catalogue": `| # | input | `command` | status | `message` |`.
    static func rows() throws -> [Row] {
        let text = try String(
            contentsOf: Repository.root.appendingPathComponent("Docs/reliability.md"), encoding: .utf8)
        guard let start = text.range(of: "## The catalogue") else { return [] }
        var rows: [Row] = []
        for line in text[start.upperBound...].split(separator: "\n") {
            if line.hasPrefix("## ") { break }
            // Cells are separated by " | "; a `|` inside a cell is written `\|`.
            let cells = line.replacingOccurrences(of: "\\|", with: "\u{1}").split(separator: "|").map {
                $0.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "\u{1}", with: "|")
            }
            guard cells.count == 5, let number = Int(cells[0]), let status = Int(cells[3]) else { continue }
            // `text`, or `` text `` when the text holds a backtick.
            func unquoted(_ cell: String) -> String {
                if cell.hasPrefix("`` "), cell.hasSuffix(" ``"), cell.count >= 6 {
                    return String(cell.dropFirst(3).dropLast(3))
                }
                return cell.hasPrefix("`") && cell.hasSuffix("`") && cell.count >= 2
                    ? String(cell.dropFirst().dropLast()) : cell
            }
            rows.append(Row(number: number, command: unquoted(cells[2]), status: status, message: unquoted(cells[4])))
        }
        return rows
    }

    @Test func theCatalogueHasFortyKindsAndEveryRowHolds() async throws {
        let rows = try Self.rows()
        #expect(rows.count >= 40, "Docs/reliability.md's catalogue has \(rows.count) rows")
        #expect(Set(rows.map(\.number)).count == rows.count, "row numbers repeat")
        let scratch = try ScratchFolder("catalogue")
        defer { scratch.remove() }
        let files = try CatalogueFiles(scratch)
        let fixture = try await EvaluatedStore("catalogue-store", methods: ["alibi"])
        defer { fixture.remove() }
        let server = try await TestServer.start(serving: fixture.store, token: "secret")
        defer { Task { await server.stop() } }
        for row in rows {
            let (status, output) =
                row.command.hasPrefix("GET ") || row.command.hasPrefix("POST ")
                ? try await http(row.command, server: server)
                : try await run(row.command, files: files, in: scratch)
            let expected = files.expand(row.message)
            if Self.printing {
                // The first line that is not a note (an environment's OPENBLAS_CORETYPE note comes first), or an HTTP
                // answer's message.
                var first =
                    output.split(separator: "\n").first { !$0.isEmpty && !$0.hasPrefix("note:") }.map(String.init) ?? ""
                if row.command.hasPrefix("GET ") || row.command.hasPrefix("POST ") { first = output }
                print("CATALOGUE \(row.number) | \(status) | \(files.placeholders(first))")
                continue
            }
            #expect(status == row.status, "\(row): status \(status)\n\(output)")
            #expect(!row.message.isEmpty && output.contains(expected), "\(row): expected «\(expected)» in\n\(output)")
        }
    }

    /// `extrapolate ARGUMENTS` with `{name}` replaced by the catalogue file's path: (status, stderr + stdout).
    func run(_ command: String, files: CatalogueFiles, in scratch: ScratchFolder) async throws -> (Int, String) {
        let arguments = command.split(separator: " ").map { files.expand(String($0)) }
        #expect(arguments.first == "extrapolate")
        let (status, out, errors) = try await Executable.run(Array(arguments.dropFirst()), in: scratch)
        return (Int(status), errors + out)
    }

    /// `METHOD PATH [BODY]` to the server, with the token unless the command ends in `(no token)`; a body of
    /// `(N MiB)` is that many bytes of `x`. (HTTP status, body).
    func http(_ command: String, server: TestServer) async throws -> (Int, String) {
        var text = command
        var headers = ["Authorization": "Bearer secret"]
        if text.hasSuffix(" (no token)") {
            text = String(text.dropLast(" (no token)".count))
            headers = [:]
        }
        let parts = text.split(separator: " ", maxSplits: 2).map(String.init)
        var body = parts.count > 2 ? Data(parts[2].utf8) : nil
        if let size = parts.count > 2 ? parts[2] : nil, size.hasPrefix("("), size.hasSuffix(" MiB)"),
            let mib = Int(size.dropFirst().dropLast(" MiB)".count))
        {
            body = Data(repeating: 0x78, count: mib << 20)
        }
        if body != nil { headers["Content-Type"] = "application/json" }
        let reply = try await server.request(parts[1], method: parts[0], headers: headers, body: body)
        // An error's message as the client decodes it (the JSON escapes quotes).
        if let message = (try? JSONValue.parse(reply.body))?["error"]?["message"]?.string {
            return (reply.status, message)
        }
        return (reply.status, reply.text)
    }
}

/// The malformed files the catalogue's rows name, each built from a valid one by one change.
struct CatalogueFiles {
    let scratch: ScratchFolder
    private(set) var paths: [String: String] = [:]

    init(_ scratch: ScratchFolder) throws {
        self.scratch = scratch
        let fixtures = Repository.fixtures.path
        let repository = Repository.root.path
        paths["data"] = Repository.kjvValidation
        paths["scratch"] = scratch.url.path
        paths["model"] = fixtures + "/models/spec-alibi/model.safetensors"
        for name in ["os-system.pt", "truncated.pt", "huge-storage.pt", "deep-nesting.pt"] {
            paths[name] = fixtures + "/hostile/" + name
        }
        let zip64 = try [UInt8](
            Data(contentsOf: URL(fileURLWithPath: repository + "/Tests/fuzz/regressions/torch/zip64-offset-overflow")))

        // safetensors
        func safetensors(_ header: String, body: Int = 16) -> [UInt8] {
            let bytes = Array(header.utf8)
            return withUnsafeBytes(of: UInt64(bytes.count).littleEndian) { Array($0) } + bytes
                + [UInt8](repeating: 0, count: body)
        }
        try file("empty.safetensors", [])
        try file("short.safetensors", withUnsafeBytes(of: UInt64(4096).littleEndian) { Array($0) } + Array("{}".utf8))
        try file("not-json.safetensors", safetensors("not json"))
        try file(
            "overlap.safetensors",
            safetensors(
                #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
            ))
        try file("dtype.safetensors", safetensors(#"{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}"#))
        try file("size.safetensors", safetensors(#"{"a":{"dtype":"F32","shape":[3,3],"data_offsets":[0,16]}}"#))
        try file("past-end.safetensors", safetensors(#"{"a":{"dtype":"F32","shape":[64],"data_offsets":[0,256]}}"#))
        try file("zip64.pt", zip64)
        // sharded index, beside a valid config
        let llama = try String(contentsOfFile: fixtures + "/configs/llama-gqa/config.json", encoding: .utf8)
        try file("index-not-json/model.safetensors.index.json", Array("{\"weight_map\": ".utf8))
        try file("index-not-json/config.json", Array(llama.utf8))
        try file(
            "index-missing/model.safetensors.index.json",
            Array(#"{"weight_map":{"a":"model-00001-of-00002.safetensors"}}"#.utf8))
        try file("index-missing/config.json", Array(llama.utf8))
        // config.json
        try file("config-not-json/config.json", Array("{\"model_type\": \"llama\",".utf8))
        try file("config-family/config.json", Array(#"{"model_type":"mamba","hidden_size":64}"#.utf8))
        try file(
            "config-heads/config.json",
            Array(
                llama.replacingOccurrences(of: "\"num_attention_heads\": ", with: "\"num_attention_heads\": 7, \"x\": ")
                    .utf8))
        try file(
            "config-type/config.json",
            Array(
                llama.replacingOccurrences(
                    of: "\"num_hidden_layers\": ", with: "\"num_hidden_layers\": \"two\", \"x\": "
                ).utf8))
        try file(
            "config-layers/config.json",
            Array(
                llama.replacingOccurrences(
                    of: "\"num_hidden_layers\": ", with: "\"num_hidden_layers\": 1000000000, \"x\": "
                ).utf8))
        // A Hugging Face model folder whose config gains a key that changes the model and is not read.
        let model = fixtures + "/models/llama-gqa"
        let config = try String(contentsOfFile: model + "/config.json", encoding: .utf8)
        try file(
            "softcap-model/config.json",
            Array(
                config.replacingOccurrences(
                    of: "{", with: "{\"attn_logit_softcapping\": 50.0, ", options: [], range: config.range(of: "{")
                ).utf8))
        try file(
            "softcap-model/model.safetensors",
            try [UInt8](Data(contentsOf: URL(fileURLWithPath: model + "/model.safetensors"))))
        try file(
            "config-softcap/config.json",
            Array(
                llama.replacingOccurrences(
                    of: "{", with: "{\"attn_logit_softcapping\": 50.0, ", options: [], range: llama.range(of: "{")
                ).utf8))
        // architecture JSON
        try file("no-layers.json", Array(#"{"formatVersion":1,"name":"x"}"#.utf8))
        try file("not-architecture.json", Array("[1, 2, 3]".utf8))
        // .tokens.zst
        let good = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Repository.kjvValidation)))
        try file("garbage.tokens.zst", Array("these are not tokens at all, just text".utf8))
        try file("cut.tokens.zst", Array(good.prefix(good.count / 2)))
        var flipped = good
        flipped[100] ^= 0x5A
        try file("flipped.tokens.zst", flipped)
        try file("odd.u16", [1, 2, 3])
        // tokenizer.json
        try file("tokenizer-not-json/tokenizer.json", Array("{\"model\":".utf8))
        try file(
            "tokenizer-wordpiece/tokenizer.json",
            Array(#"{"model":{"type":"WordPiece","vocab":{"a":0}},"added_tokens":[]}"#.utf8))
        try file(
            "tokenizer-flag/tokenizer.json",
            Array(
                #"{"model":{"type":"BPE","vocab":{"a":0},"merges":[],"byte_fallback":"yes"},"added_tokens":[],"pre_tokenizer":null,"normalizer":null}"#
                    .utf8))
        let growing = #"{"type":"Replace","pattern":{"String":" "},"content":"a b c d e f g h i j k l m n o p"}"#
        try file(
            "tokenizer-growth/tokenizer.json",
            Array(
                (#"{"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"added_tokens":[],"pre_tokenizer":null,"#
                    + #""normalizer":{"type":"Sequence","normalizers":[\#(growing),\#(growing),\#(growing)]}}"#).utf8))
        try file("text.txt", Array("some text\n".utf8))
        // TOML
        let data = Repository.kjvValidation
        try file("syntax.toml", Array("[evaluation\ndata = \"\(data)\"\n".utf8))
        try file("unknown.toml", Array("[evaluation]\ndata = \"\(data)\"\nbudgt = 10\n[[runs]]\nfolder = \"r\"\n".utf8))
        try file(
            "type.toml", Array("[evaluation]\ndata = \"\(data)\"\nbudget = \"many\"\n[[runs]]\nfolder = \"r\"\n".utf8))
        try file(
            "grid.toml", Array("[evaluation]\ndata = \"\(data)\"\nlengths = \"1x,zz\"\n[[runs]]\nfolder = \"r\"\n".utf8)
        )
        try file(
            "timeout.toml",
            Array("[evaluation]\ndata = \"\(data)\"\n[[runs]]\nfolder = \"r\"\n[report]\nnotify-timeout = 0\n".utf8))
        try file("no-runs.toml", Array("[evaluation]\ndata = \"\(data)\"\n".utf8))
        try file("no-data.toml", Array("[[runs]]\nfolder = \"r\"\n".utf8))
        try FileManager.default.createDirectory(atPath: scratch.path("a-folder"), withIntermediateDirectories: true)
        paths["a-folder"] = scratch.path("a-folder")
    }

    private mutating func file(_ name: String, _ bytes: [UInt8]) throws {
        let path = scratch.path(name)
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        paths[name] = path
        // A file inside a folder of its own is named by its folder too (`{config-type}`).
        let folder = (name as NSString).deletingLastPathComponent
        if !folder.isEmpty { paths[folder] = (path as NSString).deletingLastPathComponent }
    }

    /// `text` with every `{name}` replaced by that file's path.
    func expand(_ text: String) -> String {
        var result = text
        for (name, path) in paths { result = result.replacingOccurrences(of: "{\(name)}", with: path) }
        return result
    }

    /// `text` with every path put back as its `{name}` (longest first, so a folder does not eat its file's name).
    func placeholders(_ text: String) -> String {
        var result = text
        for (name, path) in paths.sorted(by: { $0.value.count > $1.value.count }) {
            result = result.replacingOccurrences(of: path, with: "{\(name)}")
        }
        return result
    }
}
