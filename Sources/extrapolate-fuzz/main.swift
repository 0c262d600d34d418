// The libFuzzer harness: `Tests/fuzz/run.sh TARGET …` builds this with EXTRAPOLATE_FUZZ=1 (coverage and
// AddressSanitizer on the project's own modules) and runs it with EXTRAPOLATE_FUZZ_TARGET naming the target. The
// driver is libFuzzer's `LLVMFuzzerRunDriver` (linked from libclang_rt.fuzzer_no_main): its flags are the arguments.
import CFuzzSupport
import Foundation
import FuzzTargets

/// What one process fuzzes, set once in `LLVMFuzzerInitialize`.
nonisolated(unsafe) private var selected: FuzzTarget?
nonisolated(unsafe) private var server: HTTPFuzzServer?
nonisolated(unsafe) private var api: APIFuzzResponder?
private let scratch = FuzzScratch()

/// The most bytes a parser may hold at once for an input of `size` bytes: a fixed multiple of the input plus a
/// constant (EXTRAPOLATE_FUZZ_ALLOCATION="MULTIPLE,MIB" overrides the default 64 × size + 64 MiB).
private let allocationBound: (multiple: Int, constant: Int) = {
    let parts = (ProcessInfo.processInfo.environment["EXTRAPOLATE_FUZZ_ALLOCATION"] ?? "").split(separator: ",")
    if parts.count == 2, let multiple = Int(parts[0]), let mib = Int(parts[1]) { return (multiple, mib << 20) }
    return (64, 64 << 20)
}()

/// Picks the target (and starts the server for `http`, the router for `api`) before the driver runs.
func initialize() {
    let name = ProcessInfo.processInfo.environment["EXTRAPOLATE_FUZZ_TARGET"] ?? ""
    if name == "api" {
        let ready = DispatchSemaphore(value: 0)
        Task {
            do { api = try await APIFuzzResponder.start() } catch { fatalError("cannot build the router: \(error)") }
            ready.signal()
        }
        ready.wait()
    } else if name == "http" {
        let ready = DispatchSemaphore(value: 0)
        Task {
            do { server = try await HTTPFuzzServer.start() } catch { fatalError("cannot start the server: \(error)") }
            ready.signal()
        }
        ready.wait()
    } else if let target = FuzzTarget(rawValue: name) {
        selected = target
    } else {
        let names = (FuzzTarget.allCases.map(\.rawValue) + ["api", "http"]).joined(separator: ", ")
        FileHandle.standardError.write(Data("EXTRAPOLATE_FUZZ_TARGET must name a target: \(names)\n".utf8))
        exit(2)
    }
    fuzz_hooks_install()
}

/// One input: run, then check the allocation bound.
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    if let server {
        // The server's threads allocate for every connection: memory is bounded by -rss_limit_mb instead.
        guard server.exchange(bytes) != nil else {
            fatalError("cannot connect to the server: \(String(cString: strerror(errno)))")
        }
        return 0
    }
    if let api {
        // Answered on the concurrency pool; this thread waits (libFuzzer's -timeout catches a request that never
        // finishes). Memory is bounded by -rss_limit_mb, as for `http`.
        let answered = DispatchSemaphore(value: 0)
        Task {
            _ = await api.respond(bytes)
            answered.signal()
        }
        answered.wait()
        return 0
    }
    guard let selected else { return 0 }
    fuzz_measure_begin()
    selected.run(bytes, scratch: scratch)
    let peak = fuzz_measure_end()
    let bound = allocationBound.multiple * size + allocationBound.constant
    if peak > bound {
        fatalError("\(selected.rawValue): \(peak) bytes live at once for an input of \(size) bytes (bound \(bound))")
    }
    return 0
}

initialize()
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { testOneInput($0, $1) })
