// CUDA runtime on a real GPU: device queries, round trips between host and device memory (small copies
// and the chunked pinned staging of large ones), the memory pool's statistics, out-of-memory reports,
// dtype errors, settings, event timing, and device memory wrapped by from_blob.
#include <cuda_runtime.h>  // cudaMalloc for from_blob
#include "support/catch.h"

#include <cstring>
#include <numeric>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/cuda/runtime.h"
#include "support/compare.h"

using namespace dyad;

TEST_CASE("cuda device is listed with a name and versions", "[cuda][runtime]") {
    REQUIRE(cuda_device_count() >= 1);
    REQUIRE_FALSE(cuda_device_name(0).empty());
    REQUIRE_THROWS_AS(cuda_device_name(cuda_device_count()), Error);
    const std::string v = cuda::versions();
    REQUIRE_THAT(v, Catch::Contains("CUDA runtime") && Catch::Contains("cuBLAS") && Catch::Contains("cuDNN"));
}

TEST_CASE("tensors round-trip through GPU memory", "[cuda][runtime]") {
    for (DType dt : {DType::float32, DType::float64, DType::int32, DType::uint8}) {
        const Tensor h = Tensor::arange(0, 1000, 1, dt);
        const Tensor d = h.to(Device::cuda());
        REQUIRE(d.device() == Device::cuda());
        const Tensor back = d.to(Device::cpu());
        REQUIRE_THAT(test::values(back), test::AllClose(test::values(h)));
    }
}

TEST_CASE("large copies go through the pinned staging buffers intact", "[cuda][runtime]") {
    // Sizes around the 1 MiB staging threshold and the 4 MiB chunk: below, at, one chunk plus a tail,
    // several chunks with an odd tail.
    for (int64_t n : {int64_t(262143), int64_t(262144), int64_t(1048576 + 7), int64_t(3 * 1048576 + 12345)}) {
        INFO("float elements: " << n);
        std::vector<int32_t> v(static_cast<size_t>(n));
        std::iota(v.begin(), v.end(), int32_t(-n / 2));
        Tensor d;
        {
            // The host source is gone as soon as the copy returns: the data must already be staged.
            const Tensor h = Tensor::from_vector(v, {n});
            d = h.to(Device::cuda());
        }
        const std::vector<int32_t> back = d.to(Device::cpu()).to_vector<int32_t>();
        REQUIRE(back.size() == v.size());
        REQUIRE(std::memcmp(back.data(), v.data(), v.size() * sizeof(int32_t)) == 0);
        // Device to device, then back through a view with an offset (a different start alignment).
        const Tensor copy = d.clone();
        const std::vector<int32_t> tail = copy.slice(0, 3, n).to(Device::cpu()).to_vector<int32_t>();
        REQUIRE(std::memcmp(tail.data(), v.data() + 3, tail.size() * sizeof(int32_t)) == 0);
    }
}

TEST_CASE("full, zeros and fill_ set GPU memory", "[cuda][runtime]") {
    const Tensor z = Tensor::zeros({3, 7}, DType::float32, Device::cuda());
    const Tensor f = Tensor::full({5, 33}, 2.5, DType::float32, Device::cuda());
    REQUIRE_THAT(test::values(z), test::AllClose(std::vector<double>(21, 0.0)));
    REQUIRE_THAT(test::values(f), test::AllClose(std::vector<double>(165, 2.5)));
    for (DType dt : {DType::float64, DType::int32, DType::uint8}) {
        const Tensor t = Tensor::full({4, 5}, 3.0, dt, Device::cuda());
        REQUIRE_THAT(test::values(t), test::AllClose(std::vector<double>(20, 3.0)));
    }
    // A strided view: only its elements change.
    Tensor m = Tensor::zeros({4, 6}, DType::float32, Device::cuda());
    {
        NoGradGuard ng;
        Tensor col = m.slice(1, 1, 6, 2);
        col.fill_(-1.0);
    }
    const std::vector<float> mv = m.to(Device::cpu()).to_vector<float>();
    for (size_t i = 0; i < mv.size(); i++) REQUIRE(mv[i] == ((i % 6) % 2 == 1 ? -1.0f : 0.0f));
    synchronize();
}

TEST_CASE("the memory pool counts what tensors hold, their peak, and what it reserves", "[cuda][runtime]") {
    synchronize();
    const cuda::MemoryStats before = cuda::memory_stats();
    cuda::reset_peak_memory_stats();
    const size_t bytes = size_t(16) << 20;
    {
        const Tensor t = Tensor::empty({int64_t(bytes / 4)}, DType::float32, Device::cuda());
        const cuda::MemoryStats during = cuda::memory_stats();
        REQUIRE(during.in_use == before.in_use + bytes);
        REQUIRE(during.peak >= during.in_use);
        REQUIRE(during.reserved >= during.in_use);
        REQUIRE(during.allocations == before.allocations + 1);
    }
    const cuda::MemoryStats after = cuda::memory_stats();
    REQUIRE(after.in_use == before.in_use);
    REQUIRE(after.peak >= before.in_use + bytes);
    // The freed block stays cached in the pool until empty_cache() returns it.
    REQUIRE(after.reserved >= bytes);
    cuda::empty_cache();
    REQUIRE(cuda::memory_stats().reserved <= after.reserved);
    cuda::reset_peak_memory_stats();
    REQUIRE(cuda::memory_stats().peak == cuda::memory_stats().in_use);
}

TEST_CASE("out of memory names the request, what is held and free, and the GPU stays usable", "[cuda][runtime]") {
    // 128 TiB: more than any GPU has, refused by dyad before the driver is asked (whose answer to an
    // impossible request, out of memory or invalid value, is not specified).
    REQUIRE_THROWS_AS(Tensor::empty({int64_t(1) << 45}, DType::float32, Device::cuda()), OutOfMemoryError);
    REQUIRE_THROWS_WITH(Tensor::empty({int64_t(1) << 45}, DType::float32, Device::cuda()),
                        Catch::Contains("out of memory") && Catch::Contains("requested") && Catch::Contains("free") &&
                            Catch::Contains("in all") && Catch::Contains("smaller batch"));
    const Tensor t = Tensor::full({1000}, 1.5, DType::float32, Device::cuda());
    REQUIRE(sum(t).item() == 1500.0);
}

TEST_CASE("a memory limit makes larger allocations fail as out of memory, and lifting it works", "[cuda][runtime]") {
    const size_t held = cuda::memory_stats().in_use;
    cuda::set_memory_limit(held + (size_t(64) << 20));
    REQUIRE(cuda::memory_limit() == held + (size_t(64) << 20));
    const Tensor fits = Tensor::zeros({int64_t(8) << 20}, DType::float32, Device::cuda());  // 32 MiB
    REQUIRE_THROWS_AS(Tensor::zeros({int64_t(16) << 20}, DType::float32, Device::cuda()), OutOfMemoryError);
    REQUIRE_THROWS_WITH(Tensor::zeros({int64_t(16) << 20}, DType::float32, Device::cuda()),
                        Catch::Contains("over the limit of") && Catch::Contains("requested 64.0 MiB"));
    cuda::set_memory_limit(0);
    const Tensor now_fits = Tensor::zeros({int64_t(16) << 20}, DType::float32, Device::cuda());
    REQUIRE(sum(now_fits).item() == 0.0);
    REQUIRE(sum(fits).item() == 0.0);
}

TEST_CASE("float64 on the GPU is a clear error naming the op", "[cuda][runtime]") {
    const Tensor d = Tensor::ones({4}, DType::float64, Device::cuda());
    REQUIRE_THROWS_WITH(
        relu(d), Catch::Contains("relu") && Catch::Contains("float64") && Catch::Contains("not supported on a GPU"));
    // Moving it to float32 works.
    REQUIRE(test::values(relu(d.to(DType::float32))) == std::vector<double>{1, 1, 1, 1});
}

TEST_CASE("mixing devices in one op is an error naming both devices", "[cuda][runtime]") {
    const Tensor a = Tensor::ones({3}, DType::float32, Device::cuda());
    const Tensor b = Tensor::ones({3});
    REQUIRE_THROWS_WITH(a + b, Catch::Contains("cuda:0") && Catch::Contains("cpu"));
}

TEST_CASE("precision and determinism settings round-trip", "[cuda][runtime]") {
    REQUIRE(precision() == Precision::fp32);
    for (Precision p : {Precision::tf32, Precision::bf16, Precision::fp32}) {
        set_precision(p);
        REQUIRE(precision() == p);
        REQUIRE(parse_precision(precision_name(p)) == p);
    }
    REQUIRE_THROWS_WITH(parse_precision("fp16"), Catch::Contains("fp16"));
    set_deterministic(true);
    REQUIRE(deterministic());
    set_deterministic(false);
}

TEST_CASE("the event timer measures queued GPU work", "[cuda][runtime]") {
    const Tensor a = Tensor::randn({1024, 1024}).to(Device::cuda());
    cuda::Timer timer;
    timer.start();
    Tensor c;
    for (int i = 0; i < 4; i++) c = matmul(a, a);
    timer.stop();
    const double ms = timer.elapsed_ms();
    REQUIRE(ms > 0.0);
    REQUIRE(ms < 10000.0);
}

TEST_CASE("from_blob wraps device memory without a copy, and the deleter runs once, after the queued work",
          "[cuda][runtime]") {
    cuda::use_device(0);
    void* p = nullptr;
    REQUIRE(cudaMalloc(&p, 6 * sizeof(float)) == cudaSuccess);
    const std::vector<float> host = {1, 2, 3, 4, 5, 6};
    REQUIRE(cudaMemcpy(p, host.data(), sizeof(float) * host.size(), cudaMemcpyHostToDevice) == cudaSuccess);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);  // the caller's writes are done before dyad reads
    int calls = 0;
    cudaError_t freed = cudaErrorUnknown;
    {
        Tensor t = Tensor::from_blob(p, {2, 3}, DType::float32, Device::cuda(), [&](void* q) {
            calls++;
            freed = cudaFree(q);
        });
        REQUIRE(t.device() == Device::cuda());
        REQUIRE(t.data<float>() == p);
        REQUIRE(t.to_vector<float>() == host);
        Tensor view = t.t();
        t = Tensor();
        view.mul_(2);  // dyad writes the caller's memory, through a view that keeps it alive
        synchronize();
        std::vector<float> back(6);
        REQUIRE(cudaMemcpy(back.data(), p, sizeof(float) * back.size(), cudaMemcpyDeviceToHost) == cudaSuccess);
        REQUIRE(back == std::vector<float>{2, 4, 6, 8, 10, 12});
        REQUIRE(calls == 0);
        // A large op queued on the memory right before the last handle goes: the deleter waits for it.
        const Tensor big = Tensor::ones({1 << 22}, DType::float32, Device::cuda());
        Tensor y = add(big, sum(view.reshape({6})));
        REQUIRE(y.device() == Device::cuda());
    }
    REQUIRE(calls == 1);
    REQUIRE(freed == cudaSuccess);
}
