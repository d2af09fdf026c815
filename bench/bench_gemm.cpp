// GEMM kernels, naive vs omp: square sizes, then the reference CNN's linear layers (batch 64) and
// im2col-shaped convolutions, and ResNet-18's classifier (512 -> 200 at batch 256, forward and both
// backward GEMMs) and two of its im2col convolutions. Every case is compute-bound (2*m*n*k FLOP on
// O(mk + kn + mn) data), so the rate to watch is FLOP/s and pct_peak, its fraction of the CPU's FMA peak
// for the same thread count, measured in the same process (bench/common.h). Kernels are called directly
// on preallocated 64-byte-aligned buffers, with alpha 1 and beta 0 (a forward pass).
// omp runs with 1 thread and with all threads; naive is serial and only runs up to 512^3 (it is slow).
// gemm_cuda/* (GPU): cuBLAS (strict FP32, and TF32 for comparison) against dyad's tiled kernel at 4096^3,
// on the reference CNN's linear layers at batch 128 and on ResNet-18's classifier at batch 256, timed
// with CUDA events on device buffers; the tiled runs report vs_cublas, their rate over strict-FP32
// cuBLAS's on the same case (measured in the same run).
// Run: bench_gemm --benchmark_min_time=0.2 (GPU only: --benchmark_filter=cuda)
#include <benchmark/benchmark.h>

#include <map>
#include <string>

#include "bench/common.h"
#include "dyad/dyad.h"
#include "kernels/cuda/runtime.h"
#include "kernels/gemm.h"

using namespace dyad;

namespace {

struct Case {
    const char* name;
    int64_t m, n, k;
    bool trans_a, trans_b;
};

// One line each: FLOP per call and where the operands live (L2 512 KiB, L3 32 MiB on the reference Zen 3).
const Case kCases[] = {
    // 2*256^3 = 34 MFLOP on 768 KiB of operands: L2/L3-resident, short enough that packing shows.
    {"square256", 256, 256, 256, false, false},
    // 268 MFLOP on 3 MiB: L3-resident.
    {"square512", 512, 512, 512, false, false},
    // 2.1 GFLOP on 12 MiB: L3-resident; the steady state of the blocked kernel.
    {"square1024", 1024, 1024, 1024, false, false},
    // 17 GFLOP on 48 MiB: larger than L3, so the packed blocks must carry the reuse.
    {"square2048", 2048, 2048, 2048, false, false},
    // fc1 forward, y = x w^T: x (64, 8192), w (256, 8192); 268 MFLOP, 10 MiB of operands, 32 k blocks.
    {"fc1_fwd", 64, 256, 8192, false, true},
    // fc1 backward data, dx = dy w: dy (64, 256), w (256, 8192); 268 MFLOP, wide C (64 x 8192).
    {"fc1_bwd_data", 64, 8192, 256, false, false},
    // fc1 backward weight, dw = dy^T x: dy (64, 256), x (64, 8192); 268 MFLOP with only k = 64.
    {"fc1_bwd_weight", 256, 8192, 64, true, false},
    // fc2 forward, y = x w^T: x (64, 256), w (200, 256); 6.6 MFLOP, n = 200 is not a multiple of 16.
    {"fc2_fwd", 64, 200, 256, false, true},
    // fc2 backward data, dx = dy w: dy (64, 200), w (200, 256); 6.6 MFLOP.
    {"fc2_bwd_data", 64, 256, 200, false, false},
    // fc2 backward weight, dw = dy^T x: dy (64, 200), x (64, 256); 6.6 MFLOP.
    {"fc2_bwd_weight", 200, 256, 64, true, false},
    // conv1 as im2col, per image: w (32, 3*3*3) x cols (27, 64*64); 7.1 MFLOP, k = 27 is tiny.
    {"conv1_im2col", 32, 4096, 27, false, false},
    // conv2: w (64, 32*3*3) x cols (288, 32*32); 38 MFLOP.
    {"conv2_im2col", 64, 1024, 288, false, false},
    // conv3: w (128, 64*3*3) x cols (576, 16*16); 38 MFLOP.
    {"conv3_im2col", 128, 256, 576, false, false},
    // ResNet-18's fc forward, y = x w^T: x (256, 512), w (200, 512); 52 MFLOP, 0.9 MiB, n = 200 again.
    {"resnet_fc_fwd", 256, 200, 512, false, true},
    // ResNet-18's fc backward data, dx = dy w: dy (256, 200), w (200, 512); 52 MFLOP, k = 200.
    {"resnet_fc_bwd_data", 256, 512, 200, false, false},
    // ResNet-18's fc backward weight, dw = dy^T x: dy (256, 200), x (256, 512); 52 MFLOP, m = 200.
    {"resnet_fc_bwd_weight", 200, 512, 256, true, false},
    // ResNet-18's layer1 conv as im2col, per image: w (64, 64*3*3) x cols (576, 64*64); 302 MFLOP.
    {"resnet_l1_im2col", 64, 4096, 576, false, false},
    // layer4: w (512, 512*3*3) x cols (4608, 8*8); 302 MFLOP, 9 MiB of weights, n = 64 is short.
    {"resnet_l4_im2col", 512, 64, 4608, false, false},
};

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

double flop_of(const Case& c) { return 2.0 * double(c.m) * double(c.n) * double(c.k); }

void set_flops(benchmark::State& state, const Case& c) {
    state.counters["FLOP/s"] = benchmark::Counter(flop_of(c), benchmark::Counter::kIsIterationInvariantRate);
}

void bench_naive(benchmark::State& state, Case c) {
    Operands o = make_operands(c);
    for (auto _ : state) {
        naive::gemm<float>(o.s, 1.0f, o.a.data<float>(), o.b.data<float>(), 0.0f, o.c.data<float>());
        benchmark::ClobberMemory();
    }
    set_flops(state, c);
    bench::set_pct_peak(state, flop_of(c), 1);
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
    bench::set_pct_peak(state, flop_of(c), threads);
    state.SetLabel(omp::gemm_isa());
}

// ---------------------------------------------------------------- GPU
// 4096^3 (137 GFLOP: the tiled kernel's target is 80% of cuBLAS in strict FP32), then the linear layers
// at batch 128: fc1 8192 -> 256 and fc2 256 -> 200, forward, backward data and backward weight; then
// ResNet-18's fc 512 -> 200 at batch 256, the same three GEMMs.
const Case kGpuCases[] = {
    {"square4096", 4096, 4096, 4096, false, false},
    {"fc1_fwd", 128, 256, 8192, false, true},
    {"fc1_bwd_data", 128, 8192, 256, false, false},
    {"fc1_bwd_weight", 256, 8192, 128, true, false},
    {"fc2_fwd", 128, 200, 256, false, true},
    {"fc2_bwd_data", 128, 256, 200, false, false},
    {"fc2_bwd_weight", 200, 256, 128, true, false},
    {"resnet_fc_fwd", 256, 200, 512, false, true},
    {"resnet_fc_bwd_data", 256, 512, 200, false, false},
    {"resnet_fc_bwd_weight", 200, 512, 256, true, false},
};

enum class GpuImpl { cublas, cublas_tf32, tiled };
const char* gpu_impl_name(GpuImpl g) {
    return g == GpuImpl::cublas ? "cublas" : g == GpuImpl::cublas_tf32 ? "cublas_tf32" : "tiled";
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
    bench::time_gpu(state, gpu_impl_name(impl), [&] {
        if (impl == GpuImpl::tiled)
            cuda::gemm_tiled(s, 1.0f, a.data<float>(), b.data<float>(), 0.0f, out.data<float>());
        else
            cublas();
    });
    if (impl == GpuImpl::tiled) {
        // The reference: strict-FP32 cuBLAS on the same operands, measured once per case.
        static std::map<std::string, double> cublas_seconds;
        if (!cublas_seconds.count(c.name)) cublas_seconds[c.name] = bench::gpu_seconds_per_call(cublas);
        state.counters["vs_cublas"] = bench::fraction_of(flop_of(c), flop_of(c) / cublas_seconds[c.name]);
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
    for (const Case& c : kCases) {
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
    for (const Case& c : kGpuCases)
        for (GpuImpl g : {GpuImpl::cublas, GpuImpl::cublas_tf32, GpuImpl::tiled})
            benchmark::RegisterBenchmark(("gemm_cuda/" + std::string(gpu_impl_name(g)) + "/" + c.name).c_str(),
                                         bench_cuda, c, g)
                ->UseManualTime()
                ->Unit(benchmark::kMicrosecond);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
