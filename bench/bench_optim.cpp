// Optimizer and regularisation kernels on the reference CNN and ResNet-18: one SGD step (momentum 0.9,
// weight decay 5e-4) over every parameter of models::baseline_cnn() (10 tensors, 2.2M floats, from 32 to
// 2.1M elements) and of models::resnet18_small() (62 tensors, 11.2M floats, from 64 to 2.4M elements),
// naive vs omp on the CPU and, on a GPU, one sgd_step launch per tensor against one sgd_step_multi launch
// for all of them; the same for AdamW (adam_step, adam_step_multi) and clip_grad_norm_; dropout forward on
// a conv activation; the GPU finiteness count. All are memory-bound:
// the rate to watch is bytes/s (bytes read + written per iteration) and pct_copy, its fraction of the
// copy bandwidth for the same thread count (CPU: a 64 MiB copy; GPU: a 256 MiB device-to-device copy;
// both measured in the same process, bench/common.h). Kernels are called directly on preallocated
// buffers. CPU args: kernels (0 naive, 1 omp), threads (omp only). GPU benchmarks take no args, are timed
// with CUDA events and report "no CUDA device" without a GPU.
// Run: bench_optim --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "bench/common.h"
#include "dyad/dyad.h"
#include "kernels/optim.h"
#if DYAD_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

using namespace dyad;
using bench::backends;
using bench::Config;
using bench::configure;
using bench::random_floats;

namespace {

enum class Model { cnn, resnet };
const char* model_name(Model m) { return m == Model::cnn ? "baseline_cnn" : "resnet18_small"; }

// Element counts of a model's parameters, in its order (the CNN: conv weights and biases, then the two
// linear layers; ResNet-18: convolutions, batch-norm weights and biases, fc). Built once per model.
const std::vector<int64_t>& parameter_sizes(Model m) {
    static std::vector<int64_t> cache[2];
    std::vector<int64_t>& sizes = cache[m == Model::cnn ? 0 : 1];
    if (sizes.empty()) {
        const std::shared_ptr<nn::Module> model =
            m == Model::cnn ? nn::ModuleHolder<nn::Module>(models::baseline_cnn()) : models::resnet18_small();
        for (const Tensor& p : model->parameters()) sizes.push_back(p.numel());
    }
    return sizes;
}
[[maybe_unused]] std::vector<int64_t> cnn_parameter_sizes() {  // unused without CUDA
    return parameter_sizes(Model::cnn);
}

int64_t total(const std::vector<int64_t>& sizes) {
    int64_t n = 0;
    for (int64_t s : sizes) n += s;
    return n;
}

SgdParams training_params() {
    SgdParams p;
    p.lr = 1e-6;  // small, so the values stay finite over many iterations
    p.momentum = 0.9;
    p.weight_decay = 5e-4;
    p.first_step = false;
    return p;
}

// Per element: param, grad and buffer read, param and buffer written (20 bytes).
constexpr int64_t kSgdBytes = 5 * sizeof(float);

// Dropout's input: the reference CNN's first activation at batch 128 after the first pooling,
// (128, 32, 32, 32) = 4M floats.
constexpr int64_t kDropoutN = int64_t(128) * 32 * 32 * 32;

}  // namespace

// ---------------------------------------------------------------------------- CPU
// One kernel call per parameter tensor of model m.
void run_sgd_step(benchmark::State& state, Model m) {
    const std::vector<int64_t>& sizes = parameter_sizes(m);
    const int64_t n = total(sizes);
    const Config c = configure(state, std::string(model_name(m)) + " parameters (" + std::to_string(sizes.size()) +
                                          " tensors, " + std::to_string(n) + " floats)");
    std::vector<float> param = random_floats(n, 3), grad = random_floats(n, 4), buf = random_floats(n, 5);
    const SgdParams p = training_params();
    for (auto _ : state) {
        int64_t off = 0;
        for (int64_t s : sizes) {
            if (c.omp)
                omp::sgd_step(s, param.data() + off, grad.data() + off, buf.data() + off, p);
            else
                naive::sgd_step<float>(s, param.data() + off, grad.data() + off, buf.data() + off, p);
            off += s;
        }
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * n * kSgdBytes);
    bench::set_pct_copy(state, c.omp ? int(state.range(1)) : 1);
}

// The CNN: 2.2M floats in all (44 MB of traffic), from DRAM.
void BM_sgd_step_cnn(benchmark::State& state) { run_sgd_step(state, Model::cnn); }
BENCHMARK(BM_sgd_step_cnn)->Apply(backends);

// ResNet-18: 11.2M floats (224 MB of traffic), from DRAM.
void BM_sgd_step_resnet(benchmark::State& state) { run_sgd_step(state, Model::resnet); }
BENCHMARK(BM_sgd_step_resnet)->Apply(backends);

// AdamW (decay 0.05, step 10) over a model's parameters, one adam_step per tensor. Per element: param,
// grad and both moments read, param and both moments written (28 bytes).
constexpr int64_t kAdamBytes = 7 * sizeof(float);

AdamParams adam_params() {
    AdamParams p;
    p.lr = 1e-6;
    p.weight_decay = 0.05;
    p.decoupled = true;
    p.bias_correction1 = 1.0 - std::pow(p.beta1, 10);
    p.bias_correction2 = 1.0 - std::pow(p.beta2, 10);
    return p;
}

void run_adam_step(benchmark::State& state, Model m) {
    const std::vector<int64_t>& sizes = parameter_sizes(m);
    const int64_t n = total(sizes);
    const Config c = configure(state, std::string(model_name(m)) + " parameters, AdamW");
    std::vector<float> param = random_floats(n, 3), grad = random_floats(n, 4), ma = random_floats(n, 5),
                       va = random_floats(n, 6);
    for (float& v : va) v = v * v;
    const AdamParams p = adam_params();
    for (auto _ : state) {
        int64_t off = 0;
        for (int64_t s : sizes) {
            if (c.omp)
                omp::adam_step(s, param.data() + off, grad.data() + off, ma.data() + off, va.data() + off, nullptr, p);
            else
                naive::adam_step<float>(s, param.data() + off, grad.data() + off, ma.data() + off, va.data() + off,
                                        nullptr, p);
            off += s;
        }
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * n * kAdamBytes);
    bench::set_pct_copy(state, c.omp ? int(state.range(1)) : 1);
}
void BM_adam_step_cnn(benchmark::State& state) { run_adam_step(state, Model::cnn); }
BENCHMARK(BM_adam_step_cnn)->Apply(backends);
void BM_adam_step_resnet(benchmark::State& state) { run_adam_step(state, Model::resnet); }
BENCHMARK(BM_adam_step_resnet)->Apply(backends);

// clip_grad_norm_ over ResNet-18's gradients (11.2M floats): the norm reads every gradient once and the
// scaling reads and writes it (12 bytes per element).
void BM_clip_grad_norm_resnet(benchmark::State& state) {
    const Config c = configure(state, "resnet18_small gradients");
    (void)c;
    std::vector<Tensor> params;
    uint64_t seed = 20;
    for (int64_t s : parameter_sizes(Model::resnet)) {
        Tensor p = Tensor::zeros({s}).requires_grad_();
        p.set_grad(Tensor::from_vector(random_floats(s, seed++), {s}));
        params.push_back(p);
    }
    for (auto _ : state) benchmark::DoNotOptimize(optim::clip_grad_norm_(params, 1e30).item());
    state.SetBytesProcessed(state.iterations() * total(parameter_sizes(Model::resnet)) * int64_t(sizeof(float)));
}
BENCHMARK(BM_clip_grad_norm_resnet)->Apply(backends);

// Dropout forward, p = 0.5, 4M floats: x read, y and the uint8 mask written (9 bytes per element).
void BM_dropout_fwd(benchmark::State& state) {
    const Config c = configure(state, "(128, 32, 32, 32)");
    const std::vector<float> x = random_floats(kDropoutN, 6);
    std::vector<float> y(static_cast<size_t>(kDropoutN));
    std::vector<uint8_t> mask(static_cast<size_t>(kDropoutN));
    uint64_t seed = 1;
    for (auto _ : state) {
        if (c.omp)
            omp::dropout_fwd(kDropoutN, y.data(), mask.data(), x.data(), 0.5, seed++);
        else
            naive::dropout_fwd<float>(kDropoutN, y.data(), mask.data(), x.data(), 0.5, seed++);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * kDropoutN * int64_t(2 * sizeof(float) + 1));
    bench::set_pct_copy(state, c.omp ? int(state.range(1)) : 1);
}
BENCHMARK(BM_dropout_fwd)->Apply(backends);

// ---------------------------------------------------------------------------- CUDA
namespace {

#if DYAD_WITH_CUDA
// A model's parameters, gradients and momentum buffers on the GPU, one tensor each.
struct DeviceParams {
    std::vector<Tensor> param, grad, buf;
    std::vector<SgdTensor> list;
    int64_t n = 0;
};

DeviceParams device_params(Model m) {
    DeviceParams d;
    uint64_t seed = 10;
    for (int64_t s : parameter_sizes(m)) {
        d.param.push_back(Tensor::from_vector(random_floats(s, seed++), {s}, Device::cuda()));
        d.grad.push_back(Tensor::from_vector(random_floats(s, seed++), {s}, Device::cuda()));
        d.buf.push_back(Tensor::from_vector(random_floats(s, seed++), {s}, Device::cuda()));
        d.list.push_back({d.param.back().data<float>(), d.grad.back().data<float>(), d.buf.back().data<float>(), s});
        d.n += s;
    }
    return d;
}
#endif

// One sgd_step launch per parameter tensor of model m (the small tensors are launch-bound).
void run_cuda_sgd_step_per_tensor(benchmark::State& state, Model m) {
    if (!bench::require_gpu(state)) return;
    int64_t n = 0;
#if DYAD_WITH_CUDA
    cuda::use_device(0);
    const DeviceParams d = device_params(m);
    n = d.n;
    const SgdParams p = training_params();
    bench::time_gpu(state, "sgd_step x" + std::to_string(d.list.size()) + " (" + model_name(m) + " parameters)", [&] {
        for (const SgdTensor& t : d.list) cuda::sgd_step(t.n, t.param, t.grad, t.momentum_buf, p);
    });
#else
    (void)m;
#endif
    state.SetItemsProcessed(state.iterations() * n);
    state.SetBytesProcessed(state.iterations() * n * kSgdBytes);
    bench::set_pct_copy(state, 1, true);
}

// The same update as one sgd_step_multi launch (what optim::Sgd does on a GPU).
void run_cuda_sgd_step_multi(benchmark::State& state, Model m) {
    if (!bench::require_gpu(state)) return;
    int64_t n = 0;
#if DYAD_WITH_CUDA
    cuda::use_device(0);
    const DeviceParams d = device_params(m);
    n = d.n;
    const SgdParams p = training_params();
    bench::time_gpu(state, std::string("sgd_step_multi (") + model_name(m) + " parameters)",
                    [&] { cuda::sgd_step_multi(d.list.data(), int(d.list.size()), p); });
#else
    (void)m;
#endif
    state.SetItemsProcessed(state.iterations() * n);
    state.SetBytesProcessed(state.iterations() * n * kSgdBytes);
    bench::set_pct_copy(state, 1, true);
}

}  // namespace

// The CNN: 10 launches, or one.
void BM_cuda_sgd_step_per_tensor(benchmark::State& state) { run_cuda_sgd_step_per_tensor(state, Model::cnn); }
BENCHMARK(BM_cuda_sgd_step_per_tensor)->UseManualTime()->Unit(benchmark::kMicrosecond);
void BM_cuda_sgd_step_multi(benchmark::State& state) { run_cuda_sgd_step_multi(state, Model::cnn); }
BENCHMARK(BM_cuda_sgd_step_multi)->UseManualTime()->Unit(benchmark::kMicrosecond);

// AdamW over ResNet-18's parameters as optim::AdamW runs it on a GPU: adam_step_multi, 24 tensors a launch.
void BM_cuda_adam_step_multi_resnet(benchmark::State& state) {
    if (!bench::require_gpu(state)) return;
    int64_t n = 0;
#if DYAD_WITH_CUDA
    cuda::use_device(0);
    const DeviceParams d = device_params(Model::resnet);
    std::vector<Tensor> v;
    std::vector<AdamTensor> list;
    for (size_t i = 0; i < d.list.size(); i++) {
        v.push_back(Tensor::zeros({d.list[i].n}, DType::float32, Device::cuda()));
        list.push_back(
            {d.list[i].param, d.list[i].grad, d.list[i].momentum_buf, v.back().data<float>(), nullptr, d.list[i].n});
    }
    n = d.n;
    const AdamParams p = adam_params();
    bench::time_gpu(state, "adam_step_multi (resnet18_small parameters)",
                    [&] { cuda::adam_step_multi(list.data(), int(list.size()), p); });
#endif
    state.SetItemsProcessed(state.iterations() * n);
    state.SetBytesProcessed(state.iterations() * n * kAdamBytes);
    bench::set_pct_copy(state, 1, true);
}

// clip_grad_norm_ over ResNet-18's gradients on the GPU: the multi-tensor norm and the scaling, no wait.
void BM_cuda_clip_grad_norm_resnet(benchmark::State& state) {
    if (!bench::require_gpu(state)) return;
    int64_t n = 0;
#if DYAD_WITH_CUDA
    cuda::use_device(0);
    std::vector<Tensor> params;
    uint64_t seed = 20;
    for (int64_t s : parameter_sizes(Model::resnet)) {
        Tensor p = Tensor::zeros({s}, DType::float32, Device::cuda()).requires_grad_();
        p.set_grad(Tensor::from_vector(random_floats(s, seed++), {s}, Device::cuda()));
        params.push_back(p);
        n += s;
    }
    bench::time_gpu(state, "clip_grad_norm_ (resnet18_small gradients)",
                    [&] { benchmark::DoNotOptimize(optim::clip_grad_norm_(params, 1e30)); });
#endif
    state.SetItemsProcessed(state.iterations() * n);
    state.SetBytesProcessed(state.iterations() * n * int64_t(3 * sizeof(float)));
    bench::set_pct_copy(state, 1, true);
}

// ResNet-18: 62 launches, or one.
void BM_cuda_sgd_step_per_tensor_resnet(benchmark::State& state) { run_cuda_sgd_step_per_tensor(state, Model::resnet); }
BENCHMARK(BM_cuda_sgd_step_per_tensor_resnet)->UseManualTime()->Unit(benchmark::kMicrosecond);
void BM_cuda_sgd_step_multi_resnet(benchmark::State& state) { run_cuda_sgd_step_multi(state, Model::resnet); }
BENCHMARK(BM_cuda_sgd_step_multi_resnet)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_cuda_adam_step_multi_resnet)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_cuda_clip_grad_norm_resnet)->UseManualTime()->Unit(benchmark::kMicrosecond);

// Dropout forward on the GPU, same size as the CPU one: 9 bytes per element.
void BM_cuda_dropout_fwd(benchmark::State& state) {
    if (!bench::require_gpu(state)) return;
#if DYAD_WITH_CUDA
    cuda::use_device(0);
    const Tensor x = Tensor::from_vector(random_floats(kDropoutN, 6), {kDropoutN}, Device::cuda());
    const Tensor y = Tensor::empty({kDropoutN}, DType::float32, Device::cuda());
    const Tensor mask = Tensor::empty({kDropoutN}, DType::uint8, Device::cuda());
    uint64_t seed = 1;
    bench::time_gpu(state, "dropout_fwd (128, 32, 32, 32)", [&] {
        cuda::dropout_fwd(kDropoutN, y.data<float>(), mask.data<uint8_t>(), x.data<float>(), 0.5, seed++);
    });
#endif
    state.SetItemsProcessed(state.iterations() * kDropoutN);
    state.SetBytesProcessed(state.iterations() * kDropoutN * int64_t(2 * sizeof(float) + 1));
    bench::set_pct_copy(state, 1, true);
}
BENCHMARK(BM_cuda_dropout_fwd)->UseManualTime()->Unit(benchmark::kMicrosecond);

// count_nonfinite over the CNN's 2.2M gradient floats (what Sgd's check_finite costs per parameter set):
// a read of 4 bytes per element plus the wait for the count (the call is a sync point).
void BM_cuda_count_nonfinite(benchmark::State& state) {
    if (!bench::require_gpu(state)) return;
    int64_t n = 0;
#if DYAD_WITH_CUDA
    cuda::use_device(0);
    n = total(cnn_parameter_sizes());
    const Tensor x = Tensor::from_vector(random_floats(n, 7), {n}, Device::cuda());
    bench::time_gpu(state, "count_nonfinite (2.2M floats)",
                    [&] { benchmark::DoNotOptimize(cuda::count_nonfinite(n, x.data<float>())); });
#endif
    state.SetItemsProcessed(state.iterations() * n);
    state.SetBytesProcessed(state.iterations() * n * int64_t(sizeof(float)));
    bench::set_pct_copy(state, 1, true);
}
BENCHMARK(BM_cuda_count_nonfinite)->UseManualTime()->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
