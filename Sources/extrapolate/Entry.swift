import ExtrapolateCLI
import Foundation

/// OpenBLAS picks its kernels from OPENBLAS_CORETYPE when the library loads, before any Swift code runs. Some
/// machines export an older core (`Haswell`: AVX2), which halves `sgemm` on an AVX-512 CPU. For the commands that
/// run models, re-exec once with OpenBLAS's AVX-512 kernels and say so on stderr, once;
/// `EXTRAPOLATE_KEEP_BLAS_CORETYPE=1` keeps the environment's choice (and says what it costs).
func chooseBLASKernels() {
    let environment = ProcessInfo.processInfo.environment
    let arguments = CommandLine.arguments
    guard arguments.count > 1, ["score", "sweep", "compare", "watch"].contains(arguments[1]),
        let pinned = environment["OPENBLAS_CORETYPE"], !pinned.isEmpty,
        !["skylakex", "cooperlake", "sapphirerapids"].contains(pinned.lowercased()),
        let cpu = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8), cpu.contains("avx512f")
    else { return }
    func note(_ text: String) { FileHandle.standardError.write(Data("note: \(text)\n".utf8)) }
    if environment["EXTRAPOLATE_KEEP_BLAS_CORETYPE"] != nil {
        note(
            "OPENBLAS_CORETYPE=\(pinned) keeps OpenBLAS on older kernels although this CPU has AVX-512, because "
                + "EXTRAPOLATE_KEEP_BLAS_CORETYPE is set; unset both for about twice the matrix-product speed.")
        return
    }
    note(
        "OPENBLAS_CORETYPE=\(pinned) would pin OpenBLAS to older kernels on this AVX-512 CPU (about half the "
            + "matrix-product speed), so extrapolate uses OPENBLAS_CORETYPE=SkylakeX. Unset OPENBLAS_CORETYPE to silence "
            + "this note, or set EXTRAPOLATE_KEEP_BLAS_CORETYPE=1 to keep \(pinned).")
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 1)
    execv("/proc/self/exe", CommandLine.unsafeArgv)
    note("re-running with the AVX-512 kernels failed (\(String(cString: strerror(errno)))); continuing with \(pinned).")
}

/// The process: choose OpenBLAS's kernels, then run the command (asynchronously: `watch` is a service).
@main
enum Entry {
    static func main() async {
        chooseBLASKernels()
        await Extrapolate.main()
    }
}
