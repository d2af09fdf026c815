// cuda::add_i32, a CUDA kernel without a CPU twin (integer counters kept on the GPU, such as BatchNorm's
// num_batches_tracked), and the bfloat16 conversions on the device against the host's rounding. Every
// elementwise kernel the CPU sets share is compared with naive in tests/ops/elementwise.cpp, on every
// kernel set.
#include "support/catch.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "cuda/gpu.h"
#include "dyad/dyad.h"
#include "kernels/cuda/runtime.h"
#include "kernels/elementwise.h"
#include "support/compare.h"
#include "support/random.h"

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

TEST_CASE("cuda bfloat16 conversions, copies and fill give the CPU's bits", "[cuda][elementwise][bfloat16]") {
    // Random floats across many binades, with the values whose rounding is a tie, and the special values.
    std::vector<float> v = (test::random_tensor({4099}, 9) * 1e3).to_vector<float>();
    for (float f : {0.0f, -0.0f, 1.0f + 1.0f / 256, 1.0f + 3.0f / 256, 3.3e38f, -3.4e38f, 1e-40f}) v.push_back(f);
    v.push_back(std::numeric_limits<float>::infinity());
    v.push_back(std::numeric_limits<float>::quiet_NaN());
    const Tensor x = Tensor::from_vector(v, {int64_t(v.size())});
    const Tensor want = x.to(DType::bfloat16);
    const Tensor got = gpu(x).to(DType::bfloat16);
    REQUIRE(got.dtype() == DType::bfloat16);
    const Tensor back = cpu(got);
    const bfloat16 *w = want.data<bfloat16>(), *g = back.data<bfloat16>();
    for (size_t i = 0; i < v.size(); i++) {
        INFO("element " << i << " = " << v[i]);
        if (std::isnan(v[i]))
            CHECK(std::isnan(float(g[i])));
        else
            CHECK(g[i].bits == w[i].bits);
    }
    // Widening on the device is exact; a transposed bfloat16 copy moves the same bits; fill rounds as the host.
    CHECK(test::values(cpu(gpu(want).to(DType::float32))) == test::values(want.to(DType::float32)));
    const Tensor m = (test::random_tensor({37, 53}, 10) * 50.0).to(DType::bfloat16);
    CHECK(test::values(cpu(gpu(m).t().contiguous())) == test::values(m.t().contiguous()));
    CHECK(test::values(cpu(Tensor::full({5}, 1.0 / 3.0, DType::bfloat16, Device::cuda()))) ==
          test::values(Tensor::full({5}, 1.0 / 3.0, DType::bfloat16)));
}
