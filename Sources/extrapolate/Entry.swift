import ExtrapolateCLI
import Foundation
import Kernels

/// OpenBLAS picks its kernels when the library loads, before any Swift code runs: from `OPENBLAS_CORETYPE` if the
/// environment sets one, else from its table of CPU models, which 0.3.21 does not know recent CPUs by (a Sapphire
/// Rapids Xeon gets the SSE3 Prescott kernels, 4× slower). For the commands that run models, when the kernels in use
/// are weaker than the CPU supports (`Kernels.betterBLASCore`, from cpuid), re-execute once with the right
/// `OPENBLAS_CORETYPE` and say so on stderr; `EXTRAPOLATE_KEEP_BLAS_CORETYPE=1` keeps OpenBLAS's choice. A request
/// for help runs no model, so it gets neither the note nor the re-execution.
func chooseBLASKernels() {
    let environment = ProcessInfo.processInfo.environment
    let arguments = CommandLine.arguments
    guard arguments.count > 1, ["score", "sweep", "compare", "watch", "serve"].contains(arguments[1]),
        !arguments.contains("--help"), !arguments.contains("-h"), environment["EXTRAPOLATE_BLAS_CHOSEN"] == nil,
        let better = Kernels.betterBLASCore()
    else { return }
    func note(_ text: String) { FileHandle.standardError.write(Data("note: \(text)\n".utf8)) }
    let current = Kernels.blasCore
    let cause =
        environment["OPENBLAS_CORETYPE"].map { "OPENBLAS_CORETYPE=\($0) pins" }
        ?? "OpenBLAS does not recognise this CPU and chose"
    if environment["EXTRAPOLATE_KEEP_BLAS_CORETYPE"] != nil {
        note(
            "\(cause) its \(current) kernels although this CPU supports \(better)'s; kept because "
                + "EXTRAPOLATE_KEEP_BLAS_CORETYPE is set (matrix products run 2–4× slower)")
        return
    }
    note("\(cause) its \(current) kernels; this CPU supports \(better)'s, so extrapolate uses those")
    setenv("OPENBLAS_CORETYPE", better, 1)
    setenv("EXTRAPOLATE_BLAS_CHOSEN", "1", 1)  // one re-execution, even if OpenBLAS ignored the request
    execv("/proc/self/exe", CommandLine.unsafeArgv)
    note("re-running with \(better) failed (\(String(cString: strerror(errno)))); continuing with \(current)")
}

/// The process: choose OpenBLAS's kernels, then run the command (asynchronously: `watch` is a service).
@main
enum Entry {
    static func main() async {
        chooseBLASKernels()
        await Extrapolate.main()
    }
}
