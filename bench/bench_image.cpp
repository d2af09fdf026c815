// Image batch assembly: a batch of 256 samples drawn from a data set of 10000 64x64 RGB uint8 images
// (123 MB, as held in memory for training), each with a random crop of the 4-pixel zero-padded image and
// a random flip, normalised to float NCHW. Per batch 3.1 MB of pixels are read (scattered over the data
// set) and 12.6 MB of floats written: memory-bound. The baseline CNN and ResNet-18 train on the same
// 64x64x3 images, so this one shape serves both. The rates to watch are images/s (items), bytes/s
// (pixels read + floats written) and pct_copy, the bytes/s as a fraction of the copy bandwidth for the
// same thread count (CPU: a 64 MiB copy; GPU: a 256 MiB device-to-device copy; both measured in the same
// process, bench/common.h). Kernels are called directly on preallocated buffers.
// CPU args: kernels (0 naive, 1 omp), threads (omp only). The GPU benchmark takes no args, keeps the data
// set on the GPU (only the indices of a batch travel in training), is timed with CUDA events and reports
// "no CUDA device" without a GPU.
// Run: bench_image --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <vector>

#include "bench/common.h"
#include "dyad/dyad.h"
#include "kernels/image.h"
#if DYAD_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

using namespace dyad;
using bench::backends;
using bench::Config;
using bench::configure;

namespace {

constexpr int64_t kCount = 10000, kBatch = 256, kSize = 64, kChannels = 3, kPad = 4;

ImageBatchShape batch_shape() {
    ImageBatchShape s;
    s.batch = kBatch;
    s.count = kCount;
    s.h = s.w = kSize;
    s.c = kChannels;
    s.out_h = s.out_w = kSize;
    s.pad = kPad;
    s.crop = true;
    s.flip = true;
    return s;
}

// Pixel bytes of the whole data set (a hash of the position).
std::vector<uint8_t> data_set() {
    std::vector<uint8_t> v(size_t(kCount * kSize * kSize * kChannels));
    for (size_t i = 0; i < v.size(); i++) v[i] = uint8_t((uint32_t(i) * 2654435761u) >> 24);
    return v;
}

// The indices of batch `k` of an epoch: scattered over the data set.
std::vector<int32_t> batch_indices(int64_t k) {
    std::vector<int32_t> idx(static_cast<size_t>(kBatch));
    for (int64_t b = 0; b < kBatch; b++) idx[size_t(b)] = int32_t(((k * kBatch + b) * 7919) % kCount);
    return idx;
}

const std::vector<float> kMean = {0.485f, 0.456f, 0.406f}, kInvStd = {1 / 0.229f, 1 / 0.224f, 1 / 0.225f};

constexpr int64_t kBytesPerBatch = kBatch * kSize * kSize * kChannels * int64_t(1 + sizeof(float));

}  // namespace

void BM_image_batch(benchmark::State& state) {
    const Config c = configure(state, "256 of 10000 64x64x3, pad 4, crop + flip");
    const ImageBatchShape s = batch_shape();
    const std::vector<uint8_t> images = data_set();
    std::vector<float> out(size_t(kBatch * kChannels * kSize * kSize));
    std::vector<std::vector<int32_t>> epoch;  // the index lists of 39 batches (one epoch), cycled
    for (int64_t b = 0; b < kCount / kBatch; b++) epoch.push_back(batch_indices(b));
    int64_t k = 0;
    for (auto _ : state) {
        const std::vector<int32_t>& idx = epoch[size_t(k % int64_t(epoch.size()))];
        if (c.omp)
            omp::image_batch(s, out.data(), images.data(), idx.data(), kMean.data(), kInvStd.data(), uint64_t(k));
        else
            naive::image_batch(s, out.data(), images.data(), idx.data(), kMean.data(), kInvStd.data(), uint64_t(k));
        benchmark::ClobberMemory();
        k++;
    }
    state.SetItemsProcessed(state.iterations() * kBatch);
    state.SetBytesProcessed(state.iterations() * kBytesPerBatch);
    bench::set_pct_copy(state, c.omp ? int(state.range(1)) : 1);
}
BENCHMARK(BM_image_batch)->Apply(backends);

// The same batch on the GPU from a resident data set; the indices are already on the GPU.
void BM_cuda_image_batch(benchmark::State& state) {
    if (!bench::require_gpu(state)) return;
#if DYAD_WITH_CUDA
    cuda::use_device(0);
    const ImageBatchShape s = batch_shape();
    const Tensor images = Tensor::from_vector(data_set(), {kCount, kSize, kSize, kChannels}, Device::cuda());
    const Tensor idx = Tensor::from_vector(batch_indices(0), {kBatch}, Device::cuda());
    const Tensor mean = Tensor::from_vector(kMean, {kChannels}, Device::cuda());
    const Tensor inv_std = Tensor::from_vector(kInvStd, {kChannels}, Device::cuda());
    const Tensor out = Tensor::empty({kBatch, kChannels, kSize, kSize}, DType::float32, Device::cuda());
    uint64_t seed = 0;
    bench::time_gpu(state, "image_batch 256 of 10000 64x64x3, pad 4, crop + flip", [&] {
        cuda::image_batch(s, out.data<float>(), images.data<uint8_t>(), idx.data<int32_t>(), mean.data<float>(),
                          inv_std.data<float>(), seed++);
    });
#endif
    state.SetItemsProcessed(state.iterations() * kBatch);
    state.SetBytesProcessed(state.iterations() * kBytesPerBatch);
    bench::set_pct_copy(state, 1, true);
}
BENCHMARK(BM_cuda_image_batch)->UseManualTime()->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
