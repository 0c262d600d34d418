// oneDNN's bf16 matmul (what PyTorch uses on CPU) on the shapes `bf16_gemm.c` measures, for the choice the bf16 mode
// needs: a micro-kernel of our own, or oneDNN. Same work as bf16_gemm.c: the fp32 activations rounded to bf16 inside
// the timed region, the weights reordered once to oneDNN's preferred layout outside it, fp32 output; one thread.
//
//   apt-get install -y libdnnl-dev        # Debian's oneDNN 2.6
//   g++ -O2 -o /tmp/onednn_bf16 Benchmarks/kernels/onednn_bf16.cpp -ldnnl
//   OMP_NUM_THREADS=1 /tmp/onednn_bf16 [m n k repeats]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

using namespace dnnl;

int main(int argc, char **argv) {
    const memory::dim m = argc > 1 ? atol(argv[1]) : 2048, n = argc > 2 ? atol(argv[2]) : 3072,
                      k = argc > 3 ? atol(argv[3]) : 768;
    const int repeats = argc > 4 ? atoi(argv[4]) : 5;
    engine cpu(engine::kind::cpu, 0);
    stream s(cpu);
    std::vector<float> a(m * k), b(k * n), c(m * n);
    srand(1);
    for (auto &x : a) x = (float)rand() / RAND_MAX - 0.5f;
    for (auto &x : b) x = ((float)rand() / RAND_MAX - 0.5f) * 0.1f;

    memory::desc a_f32({m, k}, memory::data_type::f32, memory::format_tag::ab);
    memory::desc a_bf16({m, k}, memory::data_type::bf16, memory::format_tag::ab);
    memory::desc b_any({k, n}, memory::data_type::bf16, memory::format_tag::any);
    memory::desc b_f32({k, n}, memory::data_type::f32, memory::format_tag::ba);  // B stored [n][k], as weights are
    memory::desc c_f32({m, n}, memory::data_type::f32, memory::format_tag::ab);
    matmul::primitive_desc pd(matmul::desc(a_bf16, b_any, c_f32), cpu);
    printf("oneDNN %d.%d.%d, implementation %s\n", dnnl_version()->major, dnnl_version()->minor,
           dnnl_version()->patch, pd.impl_info_str());

    memory a_mem(a_f32, cpu, a.data()), a16(a_bf16, cpu), b_mem(b_f32, cpu, b.data()), b16(pd.weights_desc(), cpu),
        c_mem(c_f32, cpu, c.data());
    reorder(b_mem, b16).execute(s, b_mem, b16);  // the weights, once
    reorder round_a(a_mem, a16);
    matmul product(pd);
    double best = 1e9;
    for (int r = 0; r < repeats; r++) {
        auto t = std::chrono::steady_clock::now();
        round_a.execute(s, a_mem, a16);
        product.execute(s, {{DNNL_ARG_SRC, a16}, {DNNL_ARG_WEIGHTS, b16}, {DNNL_ARG_DST, c_mem}});
        s.wait();
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
        best = seconds < best ? seconds : best;
    }
    printf("%ld x %ld x %ld, best of %d: %.1f GFLOP/s\n", (long)m, (long)n, (long)k, repeats,
           2.0 * m * n * k / best / 1e9);
    return 0;
}
