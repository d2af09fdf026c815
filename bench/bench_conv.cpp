// Convolution kernels, naive vs omp: forward (with bias), backward data and backward filter (with the
// bias gradient) on the reference CNN's three conv layers. All are compute-bound (2*N*K*C*R*S*P*Q FLOP
// per pass on O(input + weight + output) data), so the rate to watch is FLOP/s against bench_peak's FMA
// peak for the same thread count; omp lowers each image to GEMMs (im2col), so bench_gemm's *_im2col
// cases are its ceiling. Kernels are called directly on preallocated buffers.
// omp runs at batch 64 with 1 and 2 threads; naive is serial and slow (about 1 GFLOP/s), so it runs at
// batch 4 (its label says so): the FLOP/s are per pass of the batch actually run, comparable across both.
// conv_cuda/* (GPU): every pass of the three layers at batch 128 with cuDNN (its algorithm found on the
// untimed warm-up calls) and with im2col + cuBLAS, in strict FP32, timed with CUDA events.
// Run: bench_conv --benchmark_min_time=0.3 (GPU only: --benchmark_filter=cuda)
#include <benchmark/benchmark.h>

#include <string>

#include "bench/common.h"
#include "dyad/dyad.h"
#include "kernels/conv.h"
#include "kernels/cuda/runtime.h"

using namespace dyad;

namespace {

struct Layer {
    const char* name;
    int64_t c, h, w, k, r, s, pad;
};

// x (N, C, H, W), weight (K, C, R, S), stride 1: the reference CNN's convolutions.
const Layer kLayers[] = {
    // x (64, 3, 64, 64), w (32, 3, 3, 3): 0.9 GFLOP at batch 64; CRS = 27 is a short GEMM k.
    {"conv1", 3, 64, 64, 32, 3, 3, 1},
    // x (64, 32, 32, 32), w (64, 32, 3, 3): 2.4 GFLOP; per image K x CRS x PQ = 64 x 288 x 1024.
    {"conv2", 32, 32, 32, 64, 3, 3, 1},
    // x (64, 64, 16, 16), w (128, 64, 3, 3): 2.4 GFLOP; per image 128 x 576 x 256.
    {"conv3", 64, 16, 16, 128, 3, 3, 1},
};

enum class Pass { fwd, bwd_data, bwd_filter };
const char* pass_name(Pass p) { return p == Pass::fwd ? "fwd" : p == Pass::bwd_data ? "bwd_data" : "bwd_filter"; }

Conv2dShape shape_of(const Layer& l, int64_t n) {
    Conv2dShape s;
    s.n = n, s.c = l.c, s.h = l.h, s.w = l.w, s.k = l.k, s.r = l.r, s.s = l.s;
    s.pad_h = s.pad_w = l.pad;
    s.p = s.h + 2 * l.pad - s.r + 1, s.q = s.w + 2 * l.pad - s.s + 1;
    return s;
}

// The buffers of one layer at batch n: random inputs, zeroed gradients (backward accumulates into them).
struct Buffers {
    Tensor x, w, b, y, dx, dw, db;
};

Buffers make_buffers(const Conv2dShape& s) {
    manual_seed(3);
    Buffers o;
    o.x = Tensor::randn({s.n, s.c, s.h, s.w});
    o.w = Tensor::randn({s.k, s.c, s.r, s.s});
    o.b = Tensor::randn({s.k});
    o.y = Tensor::randn({s.n, s.k, s.p, s.q});  // also dy for the backward passes
    o.dx = Tensor::zeros({s.n, s.c, s.h, s.w});
    o.dw = Tensor::zeros({s.k, s.c, s.r, s.s});
    o.db = Tensor::zeros({s.k});
    return o;
}

void run(benchmark::State& state, Layer l, Pass pass, bool use_omp, int threads, int64_t batch) {
    const Conv2dShape s = shape_of(l, batch);
    Buffers o = make_buffers(s);
    float *x = o.x.data<float>(), *w = o.w.data<float>(), *b = o.b.data<float>(), *y = o.y.data<float>();
    float *dx = o.dx.data<float>(), *dw = o.dw.data<float>(), *db = o.db.data<float>();
    NumThreadsGuard nt(threads);
    for (auto _ : state) {
        if (pass == Pass::fwd) {
            if (use_omp)
                omp::conv2d_fwd(s, y, x, w, b);
            else
                naive::conv2d_fwd<float>(s, y, x, w, b);
        } else if (pass == Pass::bwd_data) {
            if (use_omp)
                omp::conv2d_bwd_data(s, dx, y, w);
            else
                naive::conv2d_bwd_data<float>(s, dx, y, w);
        } else {
            if (use_omp)
                omp::conv2d_bwd_filter(s, dw, db, y, x);
            else
                naive::conv2d_bwd_filter<float>(s, dw, db, y, x);
        }
        benchmark::ClobberMemory();
    }
    const double flop = 2.0 * double(s.n * s.k * s.c * s.r * s.s * s.p * s.q);
    state.counters["FLOP/s"] = benchmark::Counter(flop, benchmark::Counter::kIsIterationInvariantRate);
    state.SetLabel((use_omp ? "omp x" + std::to_string(threads) : std::string("naive")) + ", batch " +
                   std::to_string(batch));
}

// The GPU passes at batch 128 on device buffers; dy is y (as above), the gradients accumulate.
void run_cuda(benchmark::State& state, Layer l, Pass pass, bool use_cudnn) {
    if (!bench::require_gpu(state)) return;
#if DYAD_WITH_CUDA
    const Conv2dShape s = shape_of(l, 128);
    const Buffers host = make_buffers(s);
    const Tensor xt = host.x.to(Device::cuda()), wt = host.w.to(Device::cuda()), bt = host.b.to(Device::cuda());
    const Tensor yt = host.y.to(Device::cuda()), dxt = host.dx.to(Device::cuda());
    const Tensor dwt = host.dw.to(Device::cuda()), dbt = host.db.to(Device::cuda());
    float *x = xt.data<float>(), *w = wt.data<float>(), *b = bt.data<float>(), *y = yt.data<float>();
    float *dx = dxt.data<float>(), *dw = dwt.data<float>(), *db = dbt.data<float>();
    const cuda::ConvImpl prev_conv = cuda::conv_impl();
    const cuda::GemmImpl prev_gemm = cuda::gemm_impl();
    const Precision prev_precision = precision();
    cuda::set_conv_impl(use_cudnn ? cuda::ConvImpl::cudnn : cuda::ConvImpl::im2col);
    cuda::set_gemm_impl(cuda::GemmImpl::cublas);
    set_precision(Precision::fp32);
    cuda::use_device(0);
    bench::time_gpu(state, std::string(use_cudnn ? "cudnn" : "im2col + cublas") + ", batch 128", [&] {
        if (pass == Pass::fwd)
            cuda::conv2d_fwd(s, y, x, w, b);
        else if (pass == Pass::bwd_data)
            cuda::conv2d_bwd_data(s, dx, y, w);
        else
            cuda::conv2d_bwd_filter(s, dw, db, y, x);
    });
    cuda::set_conv_impl(prev_conv);
    cuda::set_gemm_impl(prev_gemm);
    set_precision(prev_precision);
    const double flop = 2.0 * double(s.n * s.k * s.c * s.r * s.s * s.p * s.q);
    state.counters["FLOP/s"] = benchmark::Counter(flop, benchmark::Counter::kIsIterationInvariantRate);
#else
    (void)l, (void)pass, (void)use_cudnn;
#endif
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    for (const Layer& l : kLayers)
        for (Pass p : {Pass::fwd, Pass::bwd_data, Pass::bwd_filter}) {
            const std::string name = std::string(l.name) + "_" + pass_name(p);
            benchmark::RegisterBenchmark(("conv_naive/" + name + "/batch:4").c_str(), run, l, p, false, 1, 4)
                ->UseRealTime()
                ->Unit(benchmark::kMillisecond);
            for (int threads : {1, 2})
                benchmark::RegisterBenchmark(("conv_omp/" + name + "/threads:" + std::to_string(threads)).c_str(), run,
                                             l, p, true, threads, 64)
                    ->UseRealTime()
                    ->Unit(benchmark::kMillisecond);
        }
    for (const Layer& l : kLayers)
        for (Pass p : {Pass::fwd, Pass::bwd_data, Pass::bwd_filter})
            for (bool use_cudnn : {true, false})
                benchmark::RegisterBenchmark(("conv_cuda/" + std::string(use_cudnn ? "cudnn/" : "im2col/") + l.name +
                                              "_" + pass_name(p) + "/batch:128")
                                                 .c_str(),
                                             run_cuda, l, p, use_cudnn)
                    ->UseManualTime()
                    ->Unit(benchmark::kMicrosecond);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
