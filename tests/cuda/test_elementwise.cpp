// cuda::add_i32, a CUDA kernel without a CPU twin (integer counters kept on the GPU, such as BatchNorm's
// num_batches_tracked). Every elementwise kernel the CPU sets share is compared with naive in
// tests/ops/elementwise.cpp, on every kernel set.
#include "support/catch.h"

#include <cstdint>
#include <vector>

#include "cuda/gpu.h"
#include "dyad/dyad.h"
#include "kernels/cuda/runtime.h"
#include "kernels/elementwise.h"

using namespace dyad;
using test::cpu;
using test::gpu;

TEST_CASE("cuda add_i32 adds to every element", "[cuda][elementwise]") {
    cuda::use_device(0);
    for (int64_t n : {int64_t(1), int64_t(5), int64_t(100003)}) {
        std::vector<int32_t> v(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; i++) v[size_t(i)] = int32_t(i * 7 - 1000);
        const Tensor t = gpu(Tensor::from_vector(v, {n}));
        cuda::add_i32(t.data<int32_t>(), 3, n);
        cuda::add_i32(t.data<int32_t>(), -1, n);
        for (int32_t& e : v) e += 2;
        REQUIRE(cpu(t).to_vector<int32_t>() == v);
    }
}
