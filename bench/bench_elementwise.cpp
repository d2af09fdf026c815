// Elementwise and activation kernels, naive vs omp, on the reference CNN's activation shapes at batch 32
// and ResNet-18's layer1 activation (32, 64, 64, 64) (its residual add and ReLUs run there). All of them
// are memory-bound (exp excepted): the rate to watch is bytes/s (bytes read + written per iteration) and
// pct_copy, its fraction of the CPU's copy bandwidth for the same thread count (a 64 MiB copy measured
// in the same process, bench/common.h); BM_memcpy is the same ceiling at each benchmark's own size.
// Kernels are called directly on preallocated buffers, so the numbers are the kernels' own;
// BM_add_frontend shows what the op frontend adds on top.
// Args: shape (index into kShapes), kernels (0 naive, 1 omp), threads (omp only; naive is serial).
// The BM_cuda_* benchmarks run the CUDA kernels on device buffers at batch 128 (no args; CUDA event
// timing); pct_copy is against the GPU's device-to-device copy bandwidth (256 MiB, same process), and
// BM_cuda_copy_clone is a same-layout copy at each size.
// Run: bench_elementwise --benchmark_min_time=0.2 (GPU only: --benchmark_filter=cuda)
#include <benchmark/benchmark.h>

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "bench/common.h"
#include "dyad/dyad.h"
#include "kernels/activation.h"
#include "kernels/elementwise.h"
#include "lib/ops/common.h"  // make_strided, broadcast_strides
#if DYAD_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

using namespace dyad;

namespace {

// Activations after conv1, conv2 and conv3 of the reference CNN, batch 32: (N, C, H, W); then ResNet-18's
// layer1 activation at batch 32 (32 MiB, larger than the reference machine's L3).
const Shape kShapes[] = {{32, 32, 64, 64}, {32, 64, 32, 32}, {32, 128, 16, 16}, {32, 64, 64, 64}};
constexpr int64_t kBaselineShapes = 3, kAllShapes = 4;

struct Config {
    Shape shape;
    bool omp;
    int64_t n;  // elements
};

// Reads the benchmark's args, sets the thread count and labels the run "omp x2 (32, 32, 64, 64)".
Config configure(benchmark::State& state) {
    Config c{kShapes[state.range(0)], state.range(1) != 0, 0};
    c.n = shape_numel(c.shape);
    set_num_threads(int(state.range(2)));
    state.SetLabel(std::string(c.omp ? "omp x" + std::to_string(state.range(2)) : "naive") + " " + shape_str(c.shape));
    return c;
}

// The first `shapes` of kShapes, each naive, omp x1 and omp x2.
void shapes_and_backends_upto(benchmark::internal::Benchmark* b, int64_t shapes) {
    b->ArgNames({"shape", "omp", "threads"});
    for (int64_t s = 0; s < shapes; s++) {
        b->Args({s, 0, 1});
        b->Args({s, 1, 1});
        b->Args({s, 1, 2});
    }
    b->Unit(benchmark::kMicrosecond);
}
// The baseline CNN's shapes only.
void shapes_and_backends(benchmark::internal::Benchmark* b) { shapes_and_backends_upto(b, kBaselineShapes); }
// The baseline CNN's shapes and ResNet-18's.
void all_shapes_and_backends(benchmark::internal::Benchmark* b) { shapes_and_backends_upto(b, kAllShapes); }

// Memcpy has no backend: only the thread count varies.
void shapes_and_threads(benchmark::internal::Benchmark* b) {
    b->ArgNames({"shape", "omp", "threads"});
    for (int64_t s = 0; s < kAllShapes; s++) {
        b->Args({s, 1, 1});
        b->Args({s, 1, 2});
    }
    b->Unit(benchmark::kMicrosecond);
}

// pct_copy of a run configured by configure(): against the copy bandwidth on its thread count.
void set_pct_copy(benchmark::State& state, const Config& c) {
    bench::set_pct_copy(state, c.omp ? int(state.range(2)) : 1);
}

std::vector<float> random_floats(int64_t n, uint64_t seed) { return bench::random_floats(n, seed); }

// The iteration space the frontend builds for out = a (op) b, all three with the given shapes.
StridedShape binary_space(const Shape& out, const Shape& a, const Shape& b) {
    const Tensor o = Tensor::empty(out), ta = Tensor::empty(a), tb = Tensor::empty(b);
    return detail::make_strided(
        out, {o.strides(), detail::broadcast_strides(ta, out), detail::broadcast_strides(tb, out)}, "bench");
}

void binary(const Config& c, BinaryOp op, float* out, const float* a, const float* b, const StridedShape& s) {
    if (c.omp)
        omp::binary_fwd(op, out, a, b, s);
    else
        naive::binary_fwd<float>(op, out, a, b, s);
}

// ---------------------------------------------------------------------------- ceiling
// Bandwidth ceiling: libc memcpy of N floats, 8N bytes; with 2 threads each copies one half, inside an
// OpenMP parallel region like the omp kernels (same thread pool, same fork/join cost).
void BM_memcpy(benchmark::State& state) {
    const Config c = configure(state);
    const std::vector<float> in = random_floats(c.n, 1);
    std::vector<float> out(size_t(c.n));
    const int threads = int(state.range(2));
    for (auto _ : state) {
#pragma omp parallel num_threads(threads)
        {
            const int64_t t = omp_get_thread_num(), chunk = (c.n + threads - 1) / threads;
            const int64_t lo = std::min(c.n, t * chunk), hi = std::min(c.n, lo + chunk);
            std::memcpy(out.data() + lo, in.data() + lo, size_t(hi - lo) * sizeof(float));
        }
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * c.n * 8);
    bench::set_pct_copy(state, threads);
}
BENCHMARK(BM_memcpy)->Apply(shapes_and_threads);

// ---------------------------------------------------------------------------- binary
// out = a (op) b, same shape: reads 8N, writes 4N bytes; 1 flop per 12 bytes, memory-bound (add, mul).
void BM_binary_same_shape(benchmark::State& state, BinaryOp op) {
    const Config c = configure(state);
    const std::vector<float> a = random_floats(c.n, 1), b = random_floats(c.n, 2);
    std::vector<float> out(size_t(c.n));
    const StridedShape s = binary_space(c.shape, c.shape, c.shape);
    for (auto _ : state) {
        binary(c, op, out.data(), a.data(), b.data(), s);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * c.n * 12);
    set_pct_copy(state, c);
}
BENCHMARK_CAPTURE(BM_binary_same_shape, add, BinaryOp::add)->Apply(all_shapes_and_backends);
BENCHMARK_CAPTURE(BM_binary_same_shape, mul, BinaryOp::mul)->Apply(shapes_and_backends);

// Conv bias: (N, C, H, W) + (C, 1, 1). Reads 4N + 4C, writes 4N bytes (the bias stays in L1).
void BM_add_bias(benchmark::State& state) {
    const Config c = configure(state);
    const Shape bias_shape{c.shape[1], 1, 1};
    const std::vector<float> a = random_floats(c.n, 1), b = random_floats(c.shape[1], 2);
    std::vector<float> out(size_t(c.n));
    const StridedShape s = binary_space(c.shape, c.shape, bias_shape);
    for (auto _ : state) {
        binary(c, BinaryOp::add, out.data(), a.data(), b.data(), s);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * (c.n * 8 + c.shape[1] * 4));
    set_pct_copy(state, c);
}
BENCHMARK(BM_add_bias)->Apply(shapes_and_backends);

// Linear-layer bias (M, 256) + (256), M = N*C*H*W / 256 (the same element count as the other benches):
// reads 4N + 1 KiB, writes 4N bytes.
void BM_add_row(benchmark::State& state) {
    const Config c = configure(state);
    const int64_t w = 256, m = c.n / w;
    const std::vector<float> a = random_floats(c.n, 1), b = random_floats(w, 2);
    std::vector<float> out(size_t(c.n));
    const StridedShape s = binary_space({m, w}, {m, w}, {w});
    for (auto _ : state) {
        binary(c, BinaryOp::add, out.data(), a.data(), b.data(), s);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * (c.n * 8 + w * 4));
    set_pct_copy(state, c);
}
BENCHMARK(BM_add_row)->Apply(shapes_and_backends);

// Small contiguous adds around the omp parallel threshold (kParallelOver): 12n bytes, in L1/L2. Below
// the threshold both thread counts run serially; above it, two threads must beat one.
void BM_add_small(benchmark::State& state) {
    const int64_t n = state.range(0);
    set_num_threads(int(state.range(1)));
    const std::vector<float> a = random_floats(n, 1), b = random_floats(n, 2);
    std::vector<float> out(static_cast<size_t>(n));
    const StridedShape s = binary_space({n}, {n}, {n});
    for (auto _ : state) {
        omp::binary_fwd(BinaryOp::add, out.data(), a.data(), b.data(), s);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * n * 12);
    bench::set_pct_copy(state, int(state.range(1)));
}
BENCHMARK(BM_add_small)
    ->ArgNames({"n", "threads"})
    ->ArgsProduct({{1 << 12, 1 << 13, 1 << 14, 1 << 15, 1 << 16}, {1, 2}})
    ->Unit(benchmark::kMicrosecond);

// The op frontend, a + b: BM_add plus argument checks, make_strided and a fresh output allocation
// (whose pages the kernel touches for the first time).
void BM_add_frontend(benchmark::State& state) {
    const Config c = configure(state);
    CpuKernelsGuard guard(c.omp ? CpuKernels::omp : CpuKernels::naive);
    manual_seed(1);
    const Tensor a = Tensor::randn(c.shape), b = Tensor::randn(c.shape);
    for (auto _ : state) benchmark::DoNotOptimize(add(a, b));
    state.SetBytesProcessed(state.iterations() * c.n * 12);
    set_pct_copy(state, c);
}
BENCHMARK(BM_add_frontend)->Apply(shapes_and_backends);

// The same with both operands channels_last (NHWC): the result comes out channels_last and make_strided walks
// the three in their memory order, so the rate should match BM_add_frontend's.
void BM_add_frontend_channels_last(benchmark::State& state) {
    const Config c = configure(state);
    CpuKernelsGuard guard(c.omp ? CpuKernels::omp : CpuKernels::naive);
    manual_seed(1);
    const Tensor a = Tensor::randn(c.shape).contiguous(MemoryFormat::channels_last);
    const Tensor b = Tensor::randn(c.shape).contiguous(MemoryFormat::channels_last);
    for (auto _ : state) benchmark::DoNotOptimize(add(a, b));
    state.SetBytesProcessed(state.iterations() * c.n * 12);
    set_pct_copy(state, c);
}
BENCHMARK(BM_add_frontend_channels_last)->Apply(shapes_and_backends);

// ---------------------------------------------------------------------------- unary
// y = exp(x): 8N bytes, but one libm expf call (~10-20 cycles) per element: compute-bound.
void BM_exp(benchmark::State& state) {
    const Config c = configure(state);
    const std::vector<float> x = random_floats(c.n, 1);
    std::vector<float> y(size_t(c.n));
    const StridedShape s =
        detail::make_strided(c.shape, {Tensor::empty(c.shape).strides(), Tensor::empty(c.shape).strides()}, "bench");
    for (auto _ : state) {
        if (c.omp)
            omp::unary_fwd(UnaryOp::exp, y.data(), x.data(), s, 0.0f, 0.0f);
        else
            naive::unary_fwd<float>(UnaryOp::exp, y.data(), x.data(), s, 0.0f, 0.0f);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * c.n * 8);
    set_pct_copy(state, c);
}
BENCHMARK(BM_exp)->Apply(shapes_and_backends);

// y = relu(x): reads 4N, writes 4N bytes; one compare per element, memory-bound.
void BM_relu_fwd(benchmark::State& state) {
    const Config c = configure(state);
    const std::vector<float> x = random_floats(c.n, 1);
    std::vector<float> y(size_t(c.n));
    for (auto _ : state) {
        if (c.omp)
            omp::relu_fwd(y.data(), x.data(), c.n);
        else
            naive::relu_fwd<float>(y.data(), x.data(), c.n);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * c.n * 8);
    set_pct_copy(state, c);
}
BENCHMARK(BM_relu_fwd)->Apply(all_shapes_and_backends);

// dx += dy where x > 0: reads dx, dy, x (12N), writes dx (4N): 16N bytes, memory-bound.
void BM_relu_bwd(benchmark::State& state) {
    const Config c = configure(state);
    const std::vector<float> x = random_floats(c.n, 1), dy = random_floats(c.n, 2);
    std::vector<float> dx(size_t(c.n), 0.0f);
    for (auto _ : state) {
        if (c.omp)
            omp::relu_bwd(dx.data(), dy.data(), x.data(), c.n);
        else
            naive::relu_bwd<float>(dx.data(), dy.data(), x.data(), c.n);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * c.n * 16);
    set_pct_copy(state, c);
}
BENCHMARK(BM_relu_bwd)->Apply(all_shapes_and_backends);

// ---------------------------------------------------------------------------- copy, fill
// x.transpose(-1, -2).contiguous(): reads 4N with stride W, writes 4N contiguously. Each source cache
// line is reused by 16 consecutive output rows, so it is memory-bound if a W x 16 tile stays in L1.
void BM_copy_transposed(benchmark::State& state) {
    const Config c = configure(state);
    const Tensor x = Tensor::empty(c.shape).transpose(-1, -2);
    const Tensor out = Tensor::empty(x.shape());
    const std::vector<float> src = random_floats(c.n, 1);
    float* in = x.data<float>();
    std::memcpy(in, src.data(), size_t(c.n) * sizeof(float));
    const StridedShape s = detail::make_strided(x.shape(), {out.strides(), x.strides()}, "bench");
    for (auto _ : state) {
        if (c.omp)
            omp::copy(out.data<float>(), static_cast<const float*>(in), s);
        else
            naive::copy(out.data<float>(), static_cast<const float*>(in), s);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * c.n * 8);
    set_pct_copy(state, c);
}
BENCHMARK(BM_copy_transposed)->Apply(shapes_and_backends);

// out[i] = value: writes 4N bytes (plus the read-for-ownership the CPU does on each line).
void BM_fill(benchmark::State& state) {
    const Config c = configure(state);
    std::vector<float> out(size_t(c.n));
    for (auto _ : state) {
        if (c.omp)
            omp::fill(out.data(), 1.5f, c.n);
        else
            naive::fill(out.data(), 1.5f, c.n);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * c.n * 4);
    set_pct_copy(state, c);
}
BENCHMARK(BM_fill)->Apply(shapes_and_backends);

// ---------------------------------------------------------------------------- CUDA, batch 128
// Kernels called directly on device buffers (no allocation in the timing, except where a benchmark times
// a Tensor method). Bytes count each tensor a kernel touches once: what it must move at the least.

// The baseline CNN's activations at batch 128: after conv1, conv2 and conv3; then ResNet-18's layer1
// activation at batch 128 (128 MiB), where its residual adds and ReLUs run.
const Shape kCudaShapes[] = {{128, 32, 64, 64}, {128, 64, 32, 32}, {128, 128, 16, 16}, {128, 64, 64, 64}};

#if DYAD_WITH_CUDA
// A device tensor of `shape` holding seeded normal values.
Tensor device_randn(const Shape& shape, uint64_t seed) {
    return Tensor::from_vector(random_floats(shape_numel(shape), seed), shape).to(Device::cuda());
}
#endif

// out = x + bias, bias (C, 1, 1) broadcast over N, H, W (the conv bias): x read, out written, the bias
// (C floats) from cache. The general (strided) kernel, decoding every index.
void BM_cuda_add_bias(benchmark::State& state) {
    if (!bench::require_gpu(state)) return;
    const Shape shape = kCudaShapes[state.range(0)];
    const int64_t n = shape_numel(shape), c = shape[1];
#if DYAD_WITH_CUDA
    cuda::use_device(0);
    const Tensor x = device_randn(shape, 1), bias = device_randn({c, 1, 1}, 2);
    const Tensor out = Tensor::empty(shape, DType::float32, Device::cuda());
    const StridedShape s = binary_space(shape, shape, {c, 1, 1});
    bench::time_gpu(state, "add bias " + shape_str(shape), [&] {
        cuda::binary_fwd(BinaryOp::add, out.data<float>(), x.data<float>(), bias.data<float>(), s);
    });
#endif
    state.SetBytesProcessed(state.iterations() * (n * 8 + c * 4));
    bench::set_pct_copy(state, 1, true);
}

// out = a + b, same shape: the contiguous float4 kernel. Reads 8N, writes 4N bytes.
void BM_cuda_add(benchmark::State& state) {
    if (!bench::require_gpu(state)) return;
    const Shape shape = kCudaShapes[state.range(0)];
    const int64_t n = shape_numel(shape);
#if DYAD_WITH_CUDA
    cuda::use_device(0);
    const Tensor a = device_randn(shape, 1), b = device_randn(shape, 2);
    const Tensor out = Tensor::empty(shape, DType::float32, Device::cuda());
    const StridedShape s = binary_space(shape, shape, shape);
    bench::time_gpu(state, "add " + shape_str(shape),
                    [&] { cuda::binary_fwd(BinaryOp::add, out.data<float>(), a.data<float>(), b.data<float>(), s); });
#endif
    state.SetBytesProcessed(state.iterations() * n * 12);
    bench::set_pct_copy(state, 1, true);
}

// y = relu(x): reads 4N, writes 4N bytes.
void BM_cuda_relu_fwd(benchmark::State& state) {
    if (!bench::require_gpu(state)) return;
    const Shape shape = kCudaShapes[state.range(0)];
    const int64_t n = shape_numel(shape);
#if DYAD_WITH_CUDA
    cuda::use_device(0);
    const Tensor x = device_randn(shape, 1);
    const Tensor y = Tensor::empty(shape, DType::float32, Device::cuda());
    bench::time_gpu(state, "relu fwd " + shape_str(shape),
                    [&] { cuda::relu_fwd(y.data<float>(), x.data<float>(), n); });
#endif
    state.SetBytesProcessed(state.iterations() * n * 8);
    bench::set_pct_copy(state, 1, true);
}

// dx += dy where x > 0: reads dx, dy, x, writes dx: 16N bytes.
void BM_cuda_relu_bwd(benchmark::State& state) {
    if (!bench::require_gpu(state)) return;
    const Shape shape = kCudaShapes[state.range(0)];
    const int64_t n = shape_numel(shape);
#if DYAD_WITH_CUDA
    cuda::use_device(0);
    const Tensor x = device_randn(shape, 1), dy = device_randn(shape, 2);
    const Tensor dx = Tensor::zeros(shape, DType::float32, Device::cuda());
    bench::time_gpu(state, "relu bwd " + shape_str(shape),
                    [&] { cuda::relu_bwd(dx.data<float>(), dy.data<float>(), x.data<float>(), n); });
#endif
    state.SetBytesProcessed(state.iterations() * n * 16);
    bench::set_pct_copy(state, 1, true);
}

// The bandwidth ceiling: Tensor::clone(), a same-layout copy (the 16-byte vector copy kernel, plus the
// output's allocation from the stream-ordered pool). Reads 4N, writes 4N bytes.
void BM_cuda_copy_clone(benchmark::State& state) {
    if (!bench::require_gpu(state)) return;
    const Shape shape = kCudaShapes[state.range(0)];
    const int64_t n = shape_numel(shape);
#if DYAD_WITH_CUDA
    cuda::use_device(0);
    const Tensor x = device_randn(shape, 1);
    bench::time_gpu(state, "clone " + shape_str(shape), [&] { benchmark::DoNotOptimize(x.clone().raw_data()); });
#endif
    state.SetBytesProcessed(state.iterations() * n * 8);
    bench::set_pct_copy(state, 1, true);
}

// x.transpose(-1, -2).contiguous(): the strided copy kernel, reads with stride W (each warp touches 32
// rows), writes contiguously. Reads 4N, writes 4N bytes.
void BM_cuda_copy_transposed(benchmark::State& state) {
    if (!bench::require_gpu(state)) return;
    const Shape shape = kCudaShapes[state.range(0)];
    const int64_t n = shape_numel(shape);
#if DYAD_WITH_CUDA
    cuda::use_device(0);
    const Tensor x = device_randn(shape, 1).transpose(-1, -2);
    const Tensor out = Tensor::empty(x.shape(), DType::float32, Device::cuda());
    const StridedShape s = detail::make_strided(x.shape(), {out.strides(), x.strides()}, "bench");
    bench::time_gpu(state, "transposed copy " + shape_str(shape),
                    [&] { cuda::copy(out.data<float>(), static_cast<const float*>(x.data<float>()), s); });
#endif
    state.SetBytesProcessed(state.iterations() * n * 8);
    bench::set_pct_copy(state, 1, true);
}

// The baseline CNN's shapes (0-2); all_cuda_shapes adds ResNet-18's (3).
void cuda_shapes(benchmark::internal::Benchmark* b) {
    b->ArgName("shape")->DenseRange(0, 2)->UseManualTime()->Unit(benchmark::kMicrosecond);
}
void all_cuda_shapes(benchmark::internal::Benchmark* b) {
    b->ArgName("shape")->DenseRange(0, 3)->UseManualTime()->Unit(benchmark::kMicrosecond);
}
BENCHMARK(BM_cuda_add_bias)->Apply(cuda_shapes);
BENCHMARK(BM_cuda_add)->Apply(all_cuda_shapes);
BENCHMARK(BM_cuda_relu_fwd)->Apply(all_cuda_shapes);
BENCHMARK(BM_cuda_relu_bwd)->Apply(all_cuda_shapes);
BENCHMARK(BM_cuda_copy_clone)->Apply(all_cuda_shapes);
BENCHMARK(BM_cuda_copy_transposed)->Apply(cuda_shapes);

}  // namespace

BENCHMARK_MAIN();
