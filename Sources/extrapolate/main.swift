import ExtrapolateCLI
import Foundation

// OpenBLAS picks its kernels from OPENBLAS_CORETYPE when the library loads, before this line runs. Some
// machines export `Haswell` (AVX2), which halves sgemm on AVX-512 CPUs; re-exec once with the AVX-512 kernels.
// `EXTRAPOLATE_KEEP_BLAS_CORETYPE=1` keeps whatever the environment says.
if ProcessInfo.processInfo.environment["EXTRAPOLATE_KEEP_BLAS_CORETYPE"] == nil,
   ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] != "SkylakeX",
   let cpu = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8), cpu.contains("avx512f") {
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 1)
    execv("/proc/self/exe", CommandLine.unsafeArgv)
    // execv only returns on failure; carry on with the slower kernels.
}

Extrapolate.main()
