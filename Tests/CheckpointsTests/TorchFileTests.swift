import Foundation
import Testing
import TestSupport

@testable import Checkpoints

/// PyTorch files read without running them (fixtures from Tests/Fixtures/make_torch_checkpoints.py, written by real
/// PyTorch; the engine's reference test checks their log-probabilities).
@Suite struct TorchFiles {
    let hostile = Repository.fixtures.appendingPathComponent("hostile")

    @Test func aPickleThatCallsOsSystemIsRefusedAndNothingRuns() throws {
        let marker = "/tmp/extrapolate-pwned"
        try? FileManager.default.removeItem(atPath: marker)
        let path = hostile.appendingPathComponent("os-system.pt").path
        #expect {
            try TorchFile(path: path)
        } throws: { error in
            guard case CheckpointError.forbiddenGlobal(_, _, let module, let name) = error else { return false }
            return ["posix", "os", "nt"].contains(module) && name == "system"
        }
        #expect(!FileManager.default.fileExists(atPath: marker), "the payload ran")
    }

    @Test func hostileFilesAreRefusedWithWhatIsWrong() throws {
        func error(_ name: String) -> CheckpointError? {
            do {
                _ = try TorchFile(path: hostile.appendingPathComponent(name).path)
                return nil
            } catch { return error }
        }
        #expect(error("deep-nesting.pt")?.description.contains("nested more than 10000 levels") == true)
        #expect(error("huge-storage.pt")?.description.contains("declares 1152921504606846976 F32 elements") == true)
        // A zip cut in half is still being written, for the daemon: incomplete, not invalid.
        guard case .truncated? = error("truncated.pt") else {
            Issue.record("truncated.pt: \(String(describing: error("truncated.pt")))")
            return
        }
        let location = try CheckpointLocation.discover(hostile.appendingPathComponent("truncated.pt").path)
        guard case .incomplete = Completeness.check(location) else {
            Issue.record("a truncated zip should be incomplete")
            return
        }
    }

    @Test func everyGlobalOutsideTheAllowListIsRefused() throws {
        // GLOBAL 'builtins eval' then a string, TUPLE1, REDUCE, STOP: what a malicious file does.
        var bytes: [UInt8] = [0x80, 0x02]
        bytes += Array("cbuiltins\neval\n".utf8)
        bytes += [0x58] + withUnsafeBytes(of: UInt32(9).littleEndian, Array.init) + Array("print(42)".utf8)
        bytes += [0x85, 0x52, 0x2E]
        try bytes.withUnsafeBytes { raw in
            var unpickler = RestrictedUnpickler(raw, path: "eval.pkl")
            #expect {
                try unpickler.load()
            } throws: { error in
                guard case CheckpointError.forbiddenGlobal(_, let offset, "builtins", "eval") = error else {
                    return false
                }
                return offset == 2
            }
        }
    }

    @Test func memoizedListsSeeLaterAppends() throws {
        // EMPTY_LIST, BINPUT 0, BININT1 7, APPEND, POP, BINGET 0, STOP: the memo holds the same list.
        let bytes: [UInt8] = [0x80, 0x02, 0x5D, 0x71, 0x00, 0x4B, 0x07, 0x61, 0x30, 0x68, 0x00, 0x2E]
        try bytes.withUnsafeBytes { raw in
            var unpickler = RestrictedUnpickler(raw, path: "memo.pkl")
            let value = try unpickler.load()
            #expect(value.items?.compactMap(\.int) == [7])
        }
    }

    @Test func nanoGPTCheckpointsCarryTheirArgumentsAndStep() throws {
        let file = try TorchFile(path: Repository.model("nanogpt") + "/ckpt.pt")
        #expect(file.metadata["format"] == "torch-zip" && file.metadata["state_dict"] == "model")
        #expect(file.extras["iter_num"]?.int == 3)
        #expect(file.extras["model_args"]?["n_layer"]?.int == 2 && file.extras["model_args"]?["bias"]?.bool == true)
        // The tied lm_head is stored once and named twice: both read the same values.
        let checkpoint = try Checkpoint(file: file.path)
        #expect(try checkpoint.floats("lm_head.weight") == checkpoint.floats("transformer.wte.weight"))
        // torch.compile's prefix is removed; the legacy format reads the same way.
        let compiled = try TorchFile(path: Repository.model("nanogpt-nobias-compiled") + "/ckpt.pt")
        #expect(compiled.tensors.allSatisfy { !$0.name.hasPrefix("_orig_mod.") })
        #expect(compiled.extras["model_args"]?["bias"]?.bool == false && compiled.extras["iter_num"]?.int == 6)
        let legacy = try TorchFile(path: Repository.model("nanogpt-legacy") + "/ckpt.pt")
        #expect(legacy.metadata["format"] == "torch-legacy" && legacy.extras["iter_num"]?.int == 9)
        #expect(Set(legacy.tensors.map(\.name)) == Set(file.tensors.map(\.name)))
    }

    /// Found by fuzzing the torch target: a tensor with a dimension of 0 (`torch.empty(0, 5)`, strides (5, 1)) was
    /// given a span of -1 element, and building its byte range trapped: a real checkpoint holding an empty tensor
    /// stopped the process. Files from `make_torch_checkpoints.py --empty`, zip and legacy.
    @Test(arguments: ["model.pt", "legacy.pt"])
    func tensorsWithAnEmptyDimensionReadAsNothing(file: String) throws {
        let checkpoint = try Checkpoint(file: Repository.fixtures.appendingPathComponent("torch-empty/\(file)").path)
        #expect(Set(checkpoint.names) == ["w", "e", "s", "z"])
        #expect(try checkpoint.floats("w") == [0, 1, 2, 3, 4, 5])
        for name in ["e", "s", "z"] { #expect(try checkpoint.floats(name).isEmpty, "\(name)") }
    }

    @Test func aStridedViewReadsAsItsValues() throws {
        // gpt2-bin stores c_fc's weight as a transposed view of a contiguous copy: the same values as gpt2's.
        let name = "transformer.h.0.mlp.c_fc.weight"
        let original = try Checkpoint(file: Repository.model("gpt2") + "/model.safetensors")
        let torch = try CheckpointLocation.discover(Repository.model("gpt2-bin")).open()
        #expect(try torch.floats(name) == original.floats(name))
        #expect(try torch.names == original.names)
        let sharded = try CheckpointLocation.discover(Repository.model("gpt2-bin-sharded")).open()
        #expect(sharded.files.count == 2 && sharded.names == original.names)
    }

    @Test func namingSchemesOfPyTorchTrainers() {
        let cases: [(String, CheckpointNamingScheme, Int?)] = [
            ("checkpoint_3_1500.pt", .fairseq, 1500), ("ep2-ba4000-rank0.pt", .composer, 4000),
            ("step-200.pt", .stepFile, 200), ("model_300.pth", .numberedFile, 300),
        ]
        for (name, scheme, step) in cases {
            #expect(
                Discovery.steppedFile(name).map { [$0.0.rawValue, "\($0.1)"] } == [scheme.rawValue, "\(step!)"],
                "\(name)")
        }
        #expect(Discovery.steppedFile("checkpoint_last.pt") == nil && Discovery.steppedFile("ckpt.pt") == nil)
        #expect(Discovery.isTorchCheckpointFile("ckpt.pt") && Discovery.isTorchCheckpointFile("checkpoint_best.pt"))
        #expect(!Discovery.isTorchCheckpointFile("optimizer.pt") && !Discovery.isTorchCheckpointFile("rng_state_0.pth"))
        #expect(!Discovery.isTorchCheckpointFile("ep1-ba10-rank1.pt"))
        #expect(CheckpointName(path: "/runs/nano/ckpt.pt") == CheckpointName(run: "nano", step: nil, scheme: .nanoGPT))
    }
}

/// Found by fuzzing (Tests/fuzz/regressions/pickle): pickles that describe a container holding itself, which leaked
/// and would have made every later walk of the value endless.
@Suite struct SelfContainingPickles {
    @Test(
        arguments: [
            ("list-holds-itself-twice", [0x80, 0x02, 0x5D, 0x71, 0x00, 0x28, 0x68, 0x00, 0x68, 0x00, 0x65, 0x2E]),
            (
                "dict-holds-itself",
                [0x80, 0x02, 0x7D, 0x71, 0x00, 0x58, 0x01, 0x00, 0x00, 0x00, 0x61, 0x68, 0x00, 0x73, 0x2E]
            ),
        ] as [(String, [UInt8])])
    func areRefusedByName(name: String, bytes: [UInt8]) {
        do {
            try bytes.withUnsafeBytes { try RestrictedUnpickler.check($0, path: name) }
            Issue.record("\(name) was read")
        } catch {
            #expect("\(error)".contains("contains itself") && "\(error)".contains(name), "\(error)")
        }
    }
}

/// Found by fuzzing (Tests/fuzz/regressions/pickle/tuple-30818-deep): a tuple nested 30,818 levels deep overflowed the
/// stack when it was released, since Swift releases nested values recursively. Values of any depth, built bottom-up
/// or top-down, dropped mid-pickle or at the end, are released here on a thread with a 256 KiB stack.
@Suite struct DeeplyNestedPickles {
    static let depth = 200_000

    /// `NONE`, then `TUPLE1` `depth` times: ((((None,),),),…).
    static var tuples: [UInt8] { [0x80, 0x02, 0x4E] + [UInt8](repeating: 0x85, count: depth) + [0x2E] }

    /// A list appended into the list before it, each while still empty (parents first), via the memo; the top one is
    /// the result.
    static var listsTopDown: [UInt8] {
        func index(_ value: Int) -> [UInt8] { withUnsafeBytes(of: UInt32(value).littleEndian) { Array($0) } }
        var bytes: [UInt8] = [0x80, 0x02, 0x5D, 0x72] + index(0)
        for level in 1...depth {
            // EMPTY_LIST, LONG_BINPUT level, APPEND (into the one below), POP it, LONG_BINGET level.
            bytes += [0x5D, 0x72] + index(level) + [0x61, 0x30, 0x6A] + index(level)
        }
        return bytes + [0x30, 0x6A] + index(0) + [0x2E]
    }

    /// {"a": {"a": {…: None}}} `levels` deep built from the inside out, the last level dropped by `POP` before `NONE`
    /// ends it. Each insertion is checked for a cycle by a walk of what goes in, so past a few thousand levels the
    /// pickle is refused for the walks' budget (and what was built is released).
    static func dictsDropped(_ levels: Int) -> [UInt8] {
        var bytes: [UInt8] = [0x80, 0x02, 0x4E]
        for _ in 0..<levels {
            // LONG_BINPUT 0, POP, EMPTY_DICT, SHORT_BINUNICODE "a", LONG_BINGET 0, SETITEM.
            bytes += [0x72, 0, 0, 0, 0, 0x30, 0x7D, 0x8C, 0x01, 0x61, 0x6A, 0, 0, 0, 0, 0x73]
        }
        return bytes + [0x30, 0x4E, 0x2E]
    }

    /// Runs `body` on a thread with a small stack, so a recursive release would crash the test process.
    static func onSmallStack(_ body: @escaping @Sendable () -> String) async throws -> String {
        try await onOwnThread(stackSize: 256 * 1024, body)
    }

    @Test(arguments: [
        ("tuples", "read"), ("listsTopDown", "read"), ("dicts4000", "read"),
        ("dicts200000", "more than 16777216 nested references to follow"),
    ])
    func isReleasedWithoutRecursion(shape: String, expected: String) async throws {
        let bytes =
            switch shape {
            case "tuples": Self.tuples
            case "listsTopDown": Self.listsTopDown
            case "dicts4000": Self.dictsDropped(4000)
            default: Self.dictsDropped(Self.depth)
            }
        let outcome = try await Self.onSmallStack {
            do {
                try bytes.withUnsafeBytes { try RestrictedUnpickler.check($0, path: shape) }
                return "read"
            } catch {
                return "\(error)"
            }
        }
        #expect(outcome.contains(expected), "\(shape): \(outcome)")
    }
}
