// Convolution kernels, naive vs omp vs cuda: forward, backward data and backward filter on the reference
// CNN's three conv layers (with bias) and on ResNet-18's distinct convolutions (models::resnet18_small on
// 64x64 images: 3x3 pad 1 without bias at 64x64x64, 32x32x128, 16x16x256 and 8x8x512, the stride-2 3x3
// entering layer2 and its 1x1 stride-2 downsample; layer3's and layer4's stride-2 convs repeat layer2's
// pattern at smaller sizes and are left out). All are compute-bound (2*N*K*C*R*S*P*Q FLOP per pass on
// O(input + weight + output) data), so the rate to watch is FLOP/s and pct_peak, its fraction of the
// CPU's FMA peak for the same thread count measured in the same process (bench/common.h). omp lowers
// each image to GEMMs (im2col; bench_gemm's *_im2col cases are its practical ceiling) or, for 3x3 stride-1
// layers of 16 or more channels, runs Winograd F(4x4, 3x3) (kernels/omp/winograd.cpp), which needs 4x
// fewer multiplications: FLOP/s are those of the direct convolution (2*N*K*C*R*S*P*Q per pass) for every
// algorithm, so Winograd can pass 100% of the peak. conv_omp/* is the default (automatic) choice;
// conv_omp_im2col/*, conv_omp_winograd2/* and conv_omp_winograd4/* force one algorithm on the 3x3 stride-1
// layers. conv_omp_nhwc/* runs every layer on channels_last operands (NHWC x, y and gradients, KRSC
// weights, the same values read in the other layout) with the default choice: Winograd where NCHW would
// take it, run on NCHW copies of the operands (transposed in and out), else omp's NHWC im2col; so it
// compares with conv_omp/* (the same algorithm in NCHW, the difference being the transposes) and, on the
// other layers, with conv_omp_im2col/*. Kernels are called directly on preallocated buffers.
// omp runs the CNN at batch 64 and ResNet-18 at batch 32, with 1 and 2 threads. naive is serial and slow
// (about 1 GFLOP/s), so it runs the CNN at batch 4 and only two ResNet shapes (64x64x64 and 8x8x512) at
// batch 1 (its label says so): FLOP/s are per pass of the batch actually run, comparable across both.
// conv_cuda/* (GPU): every pass of every shape at batch 128 with cuDNN (its algorithm found on the
// untimed warm-up calls) and with im2col + cuBLAS, in strict FP32, timed with CUDA events; the im2col
// runs report vs_cudnn, their rate over cuDNN's on the same shape and pass (measured in the same run).
// conv_cuda/bf16/* and conv_cuda/bf16_nhwc/*: the same passes on bfloat16 operands (cuDNN, float
// accumulation; dyad's bias kernel), NCHW and NHWC, each with vs_fp32, its rate over the strict-FP32
// cuDNN pass on the same shape.
// Run: bench_conv --benchmark_min_time=0.3 (GPU only: --benchmark_filter=cuda)
#include <benchmark/benchmark.h>

#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "bench/common.h"
#include "dyad/dyad.h"
#include "kernels/conv.h"
#include "kernels/cuda/runtime.h"

using namespace dyad;

namespace {

struct Layer {
    const char* name;
    int64_t c, h, w, k, r, s, stride, pad;
    bool bias;
};

// x (N, C, H, W), weight (K, C, R, S), stride 1, with bias: the reference CNN's convolutions.
const Layer kLayers[] = {
    // x (64, 3, 64, 64), w (32, 3, 3, 3): 0.9 GFLOP at batch 64; CRS = 27 is a short GEMM k.
    {"conv1", 3, 64, 64, 32, 3, 3, 1, 1, true},
    // x (64, 32, 32, 32), w (64, 32, 3, 3): 2.4 GFLOP; per image K x CRS x PQ = 64 x 288 x 1024.
    {"conv2", 32, 32, 32, 64, 3, 3, 1, 1, true},
    // x (64, 64, 16, 16), w (128, 64, 3, 3): 2.4 GFLOP; per image 128 x 576 x 256.
    {"conv3", 64, 16, 16, 128, 3, 3, 1, 1, true},
};

// ResNet-18's distinct convolutions (no bias). GFLOP at batch 32; per image K x CRS x PQ.
const Layer kResnetLayers[] = {
    // layer1 (and the stem's output size): 64 -> 64 at 64x64; 9.7 GFLOP; 64 x 576 x 4096.
    {"resnet_l1_conv", 64, 64, 64, 64, 3, 3, 1, 1, false},
    // layer2's first conv, stride 2: 64x64x64 -> 32x32x128; 4.8 GFLOP; 128 x 576 x 1024.
    {"resnet_l2_conv_s2", 64, 64, 64, 128, 3, 3, 2, 1, false},
    // layer2's downsample, 1x1 stride 2: 64x64x64 -> 32x32x128; 0.5 GFLOP; 128 x 64 x 1024, a short k.
    {"resnet_l2_down", 64, 64, 64, 128, 1, 1, 2, 0, false},
    // layer2: 128 -> 128 at 32x32; 9.7 GFLOP; 128 x 1152 x 1024.
    {"resnet_l2_conv", 128, 32, 32, 128, 3, 3, 1, 1, false},
    // layer3: 256 -> 256 at 16x16; 9.7 GFLOP; 256 x 2304 x 256.
    {"resnet_l3_conv", 256, 16, 16, 256, 3, 3, 1, 1, false},
    // layer4: 512 -> 512 at 8x8; 9.7 GFLOP; 512 x 4608 x 64, a short n.
    {"resnet_l4_conv", 512, 8, 8, 512, 3, 3, 1, 1, false},
};

enum class Pass { fwd, bwd_data, bwd_filter };
const char* pass_name(Pass p) { return p == Pass::fwd ? "fwd" : p == Pass::bwd_data ? "bwd_data" : "bwd_filter"; }

Conv2dShape shape_of(const Layer& l, int64_t n) {
    Conv2dShape s;
    s.n = n, s.c = l.c, s.h = l.h, s.w = l.w, s.k = l.k, s.r = l.r, s.s = l.s;
    s.stride_h = s.stride_w = l.stride;
    s.pad_h = s.pad_w = l.pad;
    s.p = (s.h + 2 * l.pad - s.r) / l.stride + 1, s.q = (s.w + 2 * l.pad - s.s) / l.stride + 1;
    return s;
}

double flop_of(const Conv2dShape& s) { return 2.0 * double(s.n * s.k * s.c * s.r * s.s * s.p * s.q); }

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

// The buffers of layer l at the batch of s, made once and kept while that layer's benchmarks run (Google
// Benchmark calls each function several times, and drawing tens of millions of inputs each time would
// take longer than the measurement); a new layer frees the previous one's. The backward passes keep
// accumulating into the shared gradients, which changes values, not timings.
Buffers& buffers_for(const Layer& l, const Conv2dShape& s) {
    static std::string layer;
    static std::map<int64_t, Buffers> by_batch;
    if (layer != l.name) {
        by_batch.clear();
        layer = l.name;
    }
    auto it = by_batch.find(s.n);
    if (it == by_batch.end()) it = by_batch.emplace(s.n, make_buffers(s)).first;
    return it->second;
}

void run(benchmark::State& state, Layer l, Pass pass, bool use_omp, int threads, int64_t batch, CpuConvAlgorithm alg,
         bool channels_last) {
    Conv2dShape s = shape_of(l, batch);
    s.channels_last = channels_last;  // the buffers hold as many values in either layout
    const CpuConvAlgorithm was = cpu_conv_algorithm();
    set_cpu_conv_algorithm(alg);
    const int m = use_omp ? omp::winograd_tile(s) : 0;  // 0: im2col
    Buffers& o = buffers_for(l, s);
    float *x = o.x.data<float>(), *w = o.w.data<float>(), *y = o.y.data<float>();
    float *dx = o.dx.data<float>(), *dw = o.dw.data<float>();
    float* b = l.bias ? o.b.data<float>() : nullptr;  // ResNet's convolutions have none
    float* db = l.bias ? o.db.data<float>() : nullptr;
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
    set_cpu_conv_algorithm(was);
    // FLOP of the direct convolution, whatever the algorithm: Winograd's rate is its speed over im2col's.
    const double flop = flop_of(s);
    state.counters["FLOP/s"] = benchmark::Counter(flop, benchmark::Counter::kIsIterationInvariantRate);
    bench::set_pct_peak(state, flop, use_omp ? threads : 1);
    state.SetLabel(
        (use_omp ? "omp x" + std::to_string(threads) : std::string("naive")) + ", batch " + std::to_string(batch) +
        (use_omp ? m ? ", Winograd F(" + std::to_string(m) + "x" + std::to_string(m) + ",3x3)" : ", im2col" : "") +
        (channels_last ? ", NHWC" : ""));
}

#if DYAD_WITH_CUDA
// cuDNN's seconds per call of `pass` on layer l at batch 128 (strict FP32), measured once and cached: the
// reference of the im2col runs' vs_cudnn. `call` runs the pass with the current settings.
template <typename F>
double cudnn_seconds(const Layer& l, Pass pass, F&& call) {
    static std::map<std::string, double> cache;
    const std::string key = std::string(l.name) + "_" + pass_name(pass);
    const auto it = cache.find(key);
    if (it != cache.end()) return it->second;
    const cuda::ConvImpl prev = cuda::conv_impl();
    cuda::set_conv_impl(cuda::ConvImpl::cudnn);
    const double seconds = bench::gpu_seconds_per_call(call);
    cuda::set_conv_impl(prev);
    return cache[key] = seconds;
}
#endif

// The GPU passes at batch 128 on device buffers; dy is y (as above), the gradients accumulate.
void run_cuda(benchmark::State& state, Layer l, Pass pass, bool use_cudnn) {
    if (!bench::require_gpu(state)) return;
#if DYAD_WITH_CUDA
    const Conv2dShape s = shape_of(l, 128);
    const Buffers& host = buffers_for(l, s);
    const Tensor xt = host.x.to(Device::cuda()), wt = host.w.to(Device::cuda()), bt = host.b.to(Device::cuda());
    const Tensor yt = host.y.to(Device::cuda()), dxt = host.dx.to(Device::cuda());
    const Tensor dwt = host.dw.to(Device::cuda()), dbt = host.db.to(Device::cuda());
    float *x = xt.data<float>(), *w = wt.data<float>(), *y = yt.data<float>();
    float *dx = dxt.data<float>(), *dw = dwt.data<float>();
    float* b = l.bias ? bt.data<float>() : nullptr;
    float* db = l.bias ? dbt.data<float>() : nullptr;
    const cuda::ConvImpl prev_conv = cuda::conv_impl();
    const cuda::GemmImpl prev_gemm = cuda::gemm_impl();
    const Precision prev_precision = precision();
    cuda::set_conv_impl(use_cudnn ? cuda::ConvImpl::cudnn : cuda::ConvImpl::im2col);
    cuda::set_gemm_impl(cuda::GemmImpl::cublas);
    set_precision(Precision::fp32);
    cuda::use_device(0);
    const auto call = [&] {
        if (pass == Pass::fwd)
            cuda::conv2d_fwd(s, y, x, w, b);
        else if (pass == Pass::bwd_data)
            cuda::conv2d_bwd_data(s, dx, y, w);
        else
            cuda::conv2d_bwd_filter(s, dw, db, y, x);
    };
    bench::time_gpu(state, std::string(use_cudnn ? "cudnn" : "im2col + cublas") + ", batch 128", call);
    const double flop = flop_of(s);
    if (!use_cudnn) state.counters["vs_cudnn"] = bench::fraction_of(flop, flop / cudnn_seconds(l, pass, call));
    cuda::set_conv_impl(prev_conv);
    cuda::set_gemm_impl(prev_gemm);
    set_precision(prev_precision);
    state.counters["FLOP/s"] = benchmark::Counter(flop, benchmark::Counter::kIsIterationInvariantRate);
#else
    (void)l, (void)pass, (void)use_cudnn;
#endif
}

// The GPU passes on bfloat16 copies of the same buffers, in NCHW or NHWC (the values are random either way).
void run_cuda_bf16(benchmark::State& state, Layer l, Pass pass, bool channels_last) {
    if (!bench::require_gpu(state)) return;
#if DYAD_WITH_CUDA
    Conv2dShape s = shape_of(l, 128);
    const Buffers& host = buffers_for(l, s);
    auto half = [](const Tensor& t) { return t.to(Device::cuda()).to(DType::bfloat16); };
    const Tensor xt = half(host.x), wt = half(host.w), bt = half(host.b), yt = half(host.y), dxt = half(host.dx);
    const Tensor dwt = half(host.dw), dbt = half(host.db);
    s.channels_last = channels_last;
    bfloat16 *x = xt.data<bfloat16>(), *w = wt.data<bfloat16>(), *y = yt.data<bfloat16>();
    bfloat16 *dx = dxt.data<bfloat16>(), *dw = dwt.data<bfloat16>();
    bfloat16* b = l.bias ? bt.data<bfloat16>() : nullptr;
    bfloat16* db = l.bias ? dbt.data<bfloat16>() : nullptr;
    cuda::use_device(0);
    const auto call = [&] {
        if (pass == Pass::fwd)
            cuda::conv2d_fwd(s, y, x, w, b);
        else if (pass == Pass::bwd_data)
            cuda::conv2d_bwd_data(s, dx, y, w);
        else
            cuda::conv2d_bwd_filter(s, dw, db, y, x);
    };
    bench::time_gpu(state, std::string("cudnn bf16") + (channels_last ? " nhwc" : "") + ", batch 128", call);
    // The strict-FP32 cuDNN pass on the float buffers, measured once per shape and pass.
    const Conv2dShape sf = shape_of(l, 128);
    const Tensor xf = host.x.to(Device::cuda()), wf = host.w.to(Device::cuda()), bf = host.b.to(Device::cuda());
    const Tensor yf = host.y.to(Device::cuda()), dxf = host.dx.to(Device::cuda());
    const Tensor dwf = host.dw.to(Device::cuda()), dbf = host.db.to(Device::cuda());
    const Precision prev_precision = precision();
    set_precision(Precision::fp32);
    const double fp32 = cudnn_seconds(l, pass, [&] {
        if (pass == Pass::fwd)
            cuda::conv2d_fwd(sf, yf.data<float>(), xf.data<float>(), wf.data<float>(),
                             l.bias ? bf.data<float>() : nullptr);
        else if (pass == Pass::bwd_data)
            cuda::conv2d_bwd_data(sf, dxf.data<float>(), yf.data<float>(), wf.data<float>());
        else
            cuda::conv2d_bwd_filter(sf, dwf.data<float>(), l.bias ? dbf.data<float>() : nullptr, yf.data<float>(),
                                    xf.data<float>());
    });
    set_precision(prev_precision);
    const double flop = flop_of(s);
    state.counters["vs_fp32"] = bench::fraction_of(flop, flop / fp32);
    state.counters["FLOP/s"] = benchmark::Counter(flop, benchmark::Counter::kIsIterationInvariantRate);
#else
    (void)l, (void)pass, (void)channels_last;
#endif
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    const CpuConvAlgorithm automatic = CpuConvAlgorithm::automatic;
    const auto cpu = [](const std::string& name, const Layer& l, Pass p, bool use_omp, int threads, int64_t batch,
                        CpuConvAlgorithm alg, bool channels_last = false) {
        benchmark::RegisterBenchmark(name.c_str(), run, l, p, use_omp, threads, batch, alg, channels_last)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
    };
    // conv_omp/* runs the default (automatic) algorithm; on the 3x3 stride-1 layers every algorithm also
    // runs under its own name, so that their times compare in one run.
    const auto omp_runs = [&](const std::string& name, const Layer& l, Pass p, int64_t batch) {
        for (int threads : {1, 2}) {
            const std::string suffix = name + "/threads:" + std::to_string(threads);
            cpu("conv_omp/" + suffix, l, p, true, threads, batch, automatic);
            if (l.r == 3 && l.s == 3 && l.stride == 1)
                for (CpuConvAlgorithm a :
                     {CpuConvAlgorithm::im2col, CpuConvAlgorithm::winograd2, CpuConvAlgorithm::winograd4})
                    cpu(std::string("conv_omp_") + cpu_conv_algorithm_name(a) + "/" + suffix, l, p, true, threads,
                        batch, a);
            cpu("conv_omp_nhwc/" + suffix, l, p, true, threads, batch, automatic, true);
        }
    };
    const Pass passes[] = {Pass::fwd, Pass::bwd_data, Pass::bwd_filter};
    for (const Layer& l : kLayers)
        for (Pass p : passes) {
            const std::string name = std::string(l.name) + "_" + pass_name(p);
            cpu("conv_naive/" + name + "/batch:4", l, p, false, 1, 4, automatic);
            omp_runs(name, l, p, 64);
        }
    for (const Layer& l : kResnetLayers)
        for (Pass p : passes) {
            const std::string name = std::string(l.name) + "_" + pass_name(p);
            // naive: the largest image (layer1) and the deepest layer (layer4) only, one image each.
            const std::string lname = l.name;
            if (lname == "resnet_l1_conv" || lname == "resnet_l4_conv")
                cpu("conv_naive/" + name + "/batch:1", l, p, false, 1, 1, automatic);
            omp_runs(name, l, p, 32);
        }
    std::vector<Layer> all(std::begin(kLayers), std::end(kLayers));
    all.insert(all.end(), std::begin(kResnetLayers), std::end(kResnetLayers));
    for (const Layer& l : all)
        for (Pass p : passes)
            for (bool use_cudnn : {true, false})
                benchmark::RegisterBenchmark(("conv_cuda/" + std::string(use_cudnn ? "cudnn/" : "im2col/") + l.name +
                                              "_" + pass_name(p) + "/batch:128")
                                                 .c_str(),
                                             run_cuda, l, p, use_cudnn)
                    ->UseManualTime()
                    ->Unit(benchmark::kMicrosecond);
    for (const Layer& l : all)
        for (Pass p : passes)
            for (bool nhwc : {false, true})
                benchmark::RegisterBenchmark(("conv_cuda/" + std::string(nhwc ? "bf16_nhwc/" : "bf16/") + l.name + "_" +
                                              pass_name(p) + "/batch:128")
                                                 .c_str(),
                                             run_cuda_bf16, l, p, nhwc)
                    ->UseManualTime()
                    ->Unit(benchmark::kMicrosecond);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
