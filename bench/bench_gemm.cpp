// GEMM kernels, naive vs omp: square sizes, then the reference CNN's linear layers (batch 64) and
// im2col-shaped convolutions, and ResNet-18's classifier (512 -> 200 at batch 256, forward and both
// backward GEMMs) and two of its im2col convolutions. Every case is compute-bound (2*m*n*k FLOP on
// O(mk + kn + mn) data), so the rate to watch is FLOP/s and pct_peak, its fraction of the CPU's FMA peak
// for the same thread count, measured in the same process (bench/common.h). Kernels are called directly
// on preallocated 64-byte-aligned buffers, with alpha 1 and beta 0 (a forward pass).
// omp runs with 1 thread and with all threads; naive is serial and only runs up to 512^3 (it is slow).
// gemm_cuda/* (GPU): cuBLAS (strict FP32, and TF32 and bfloat16 operands for comparison) against dyad's tiled kernel at
// 4096^3, on the reference CNN's linear layers at batch 128 and on ResNet-18's classifier at batch 256, timed with CUDA
// events on device buffers; the tiled runs report vs_cublas, their rate over strict-FP32 cuBLAS's on the same case
// (measured in the same run). Run: bench_gemm --benchmark_min_time=0.2 (GPU only: --benchmark_filter=cuda)
#include <benchmark/benchmark.h>

#include <map>
#include <string>

#include "bench/cases.h"
#include "bench/common.h"
#include "dyad/dyad.h"
#include "kernels/cuda/runtime.h"
#include "kernels/gemm.h"

using namespace dyad;

namespace {

using Case = bench::GemmCase;
using bench::kGemmCases;
using bench::kGemmGpuCases;

// Operands stored as the kernel reads them: A (m, k) or (k, m) when trans_a, B (k, n) or (n, k).
struct Operands {
    Tensor a, b, c;
    GemmShape s;
};

Operands make_operands(const Case& c) {
    Operands o;
    o.s.m = c.m, o.s.n = c.n, o.s.k = c.k;
    o.s.trans_a = c.trans_a, o.s.trans_b = c.trans_b;
    o.s.lda = c.trans_a ? c.m : c.k;
    o.s.ldb = c.trans_b ? c.k : c.n;
    o.s.ldc = c.n;
    manual_seed(7);
    o.a = c.trans_a ? Tensor::randn({c.k, c.m}) : Tensor::randn({c.m, c.k});
    o.b = c.trans_b ? Tensor::randn({c.n, c.k}) : Tensor::randn({c.k, c.n});
    o.c = Tensor::zeros({c.m, c.n});
    return o;
}

void set_flops(benchmark::State& state, const Case& c) {
    state.counters["FLOP/s"] = benchmark::Counter(bench::gemm_flop(c), benchmark::Counter::kIsIterationInvariantRate);
}

void bench_naive(benchmark::State& state, Case c) {
    Operands o = make_operands(c);
    for (auto _ : state) {
        naive::gemm<float>(o.s, 1.0f, o.a.data<float>(), o.b.data<float>(), 0.0f, o.c.data<float>());
        benchmark::ClobberMemory();
    }
    set_flops(state, c);
    bench::set_pct_peak(state, bench::gemm_flop(c), 1);
}

void bench_omp(benchmark::State& state, Case c, int threads) {
    Operands o = make_operands(c);
    const int prev = num_threads();
    set_num_threads(threads);
    for (auto _ : state) {
        omp::gemm(o.s, 1.0f, o.a.data<float>(), o.b.data<float>(), 0.0f, o.c.data<float>());
        benchmark::ClobberMemory();
    }
    set_num_threads(prev);
    set_flops(state, c);
    bench::set_pct_peak(state, bench::gemm_flop(c), threads);
    state.SetLabel(omp::gemm_isa());
}

// ---------------------------------------------------------------- GPU

enum class GpuImpl { cublas, cublas_tf32, cublas_bf16, tiled };
const char* gpu_impl_name(GpuImpl g) {
    return g == GpuImpl::cublas        ? "cublas"
           : g == GpuImpl::cublas_tf32 ? "cublas_tf32"
           : g == GpuImpl::cublas_bf16 ? "cublas_bf16"
                                       : "tiled";
}

void bench_cuda(benchmark::State& state, Case c, GpuImpl impl) {
    if (!bench::require_gpu(state)) return;
#if DYAD_WITH_CUDA
    const Operands host = make_operands(c);
    const Tensor a = host.a.to(Device::cuda()), b = host.b.to(Device::cuda()), out = host.c.to(Device::cuda());
    const Precision prev = precision();
    set_precision(impl == GpuImpl::cublas_tf32 ? Precision::tf32 : Precision::fp32);
    cuda::use_device(0);
    const GemmShape s = host.s;
    const auto cublas = [&] { cuda::gemm_cublas(s, 1.0f, a.data<float>(), b.data<float>(), 0.0f, out.data<float>()); };
    // bfloat16: copies of the operands, cuBLAS with float accumulation (the bf16 mode's GEMM).
    const bool bf16 = impl == GpuImpl::cublas_bf16;
    const Tensor ah = bf16 ? a.to(DType::bfloat16) : Tensor(), bh = bf16 ? b.to(DType::bfloat16) : Tensor();
    const Tensor outh = bf16 ? out.to(DType::bfloat16) : Tensor();
    bench::time_gpu(state, gpu_impl_name(impl), [&] {
        if (impl == GpuImpl::tiled)
            cuda::gemm_tiled(s, 1.0f, a.data<float>(), b.data<float>(), 0.0f, out.data<float>());
        else if (bf16)
            cuda::gemm(s, 1.0f, ah.data<bfloat16>(), bh.data<bfloat16>(), 0.0f, outh.data<bfloat16>());
        else
            cublas();
    });
    if (impl == GpuImpl::tiled) {
        // The reference: strict-FP32 cuBLAS on the same operands, measured once per case.
        static std::map<std::string, double> cublas_seconds;
        if (!cublas_seconds.count(c.name)) cublas_seconds[c.name] = bench::gpu_seconds_per_call(cublas);
        state.counters["vs_cublas"] =
            bench::fraction_of(bench::gemm_flop(c), bench::gemm_flop(c) / cublas_seconds[c.name]);
    }
    set_precision(prev);
    set_flops(state, c);
#else
    (void)c, (void)impl;
#endif
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    const int all = num_threads();
    for (const Case& c : kGemmCases) {
        const std::string name = c.name;
        if (c.m * c.n * c.k <= int64_t(512) * 512 * 512)
            benchmark::RegisterBenchmark(("gemm_naive/" + name).c_str(), bench_naive, c)
                ->UseRealTime()
                ->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark(("gemm_omp/" + name + "/threads:1").c_str(), bench_omp, c, 1)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
        if (all > 1)
            benchmark::RegisterBenchmark(("gemm_omp/" + name + "/threads:" + std::to_string(all)).c_str(), bench_omp, c,
                                         all)
                ->UseRealTime()
                ->Unit(benchmark::kMillisecond);
    }
    for (const Case& c : kGemmGpuCases)
        for (GpuImpl g : {GpuImpl::cublas, GpuImpl::cublas_tf32, GpuImpl::cublas_bf16, GpuImpl::tiled})
            benchmark::RegisterBenchmark(("gemm_cuda/" + std::string(gpu_impl_name(g)) + "/" + c.name).c_str(),
                                         bench_cuda, c, g)
                ->UseManualTime()
                ->Unit(benchmark::kMicrosecond);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
