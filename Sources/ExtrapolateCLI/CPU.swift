import ArgumentParser
import Foundation
import Kernels

extension Extrapolate {
    /// `extrapolate cpu`: which kernels run on this machine, and why.
    public struct CPU: ParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Show which kernel sets this CPU runs: Extrapolate's own and OpenBLAS's.",
            discussion: """
                Both are chosen from the CPU's own features (cpuid) when the program starts: Extrapolate's kernels \
                in an AVX-512, AVX2 + FMA or portable build, and OpenBLAS's through OPENBLAS_CORETYPE when its own \
                choice is weaker than the CPU supports. EXTRAPOLATE_KERNELS forces one of ours (avx512, avx2, \
                generic) for comparisons; EXTRAPOLATE_KEEP_BLAS_CORETYPE=1 keeps OpenBLAS's choice. Scripts that \
                load OpenBLAS themselves (Benchmarks/compare.py) read `blasCoreType` from `--json`.
                """
        )

        @Flag(help: "Print JSON instead of text.") var json = false

        public init() {}

        /// What `cpu --json` prints.
        struct Report: Codable {
            /// 3: AVX-512 (F, BW, DQ, VL); 2: AVX2 + FMA; 1: neither.
            var cpuLevel: Int
            /// Our kernel set in use, and a forced set the CPU lacks (then refused), if any.
            var kernels: String
            var refusedKernels: String?
            /// OpenBLAS's kernel set in use, and the OPENBLAS_CORETYPE to run it with (`nil`: its own choice is right).
            var blasCore: String
            var blasCoreType: String?
            var threads: Int
        }

        public func run() throws {
            let better = Kernels.betterBLASCore()
            let report = Report(
                cpuLevel: Kernels.cpuLevel, kernels: Kernels.kernelSet, refusedKernels: Kernels.refusedKernelSet,
                blasCore: Kernels.blasCore,
                blasCoreType: better ?? ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"],
                threads: Kernels.threads)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
                return
            }
            let level = ["", "baseline x86-64 (no AVX2)", "AVX2 + FMA", "AVX-512"][report.cpuLevel]
            print("cpu        \(level)")
            print(
                "kernels    \(report.kernels)"
                    + (report.refusedKernels.map { " (EXTRAPOLATE_KERNELS=\($0) refused)" } ?? ""))
            print(
                "OpenBLAS   \(report.blasCore)"
                    + (better.map { " (weaker than this CPU: commands that run models use \($0))" } ?? ""))
            print("threads    \(report.threads)")
        }
    }
}
