// CUDA index kernels: a bad index is checked on the GPU, reported at the next synchronisation (a dyad::Error
// naming the op, the value and its position) and then cleared, and the GPU stays usable. Parity of the CUDA
// kernels with naive: tests/ops/index.cpp.
#include "support/catch.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/gpu.h"
#include "dyad/dyad.h"
#include "support/compare.h"
#include "support/random.h"

using namespace dyad;
using test::cpu;
using test::gpu;
using test::require_identical;

TEST_CASE("cuda gather and index_select with a bad index throw at the next synchronisation", "[cuda][index]") {
    using Catch::Contains;
    const Tensor x = gpu(test::random_tensor({3, 4}, 80));
    // Queuing the op does not wait; the next wait throws a dyad::Error naming the op, value and position.
    const Tensor bad = gpu(Tensor::from_vector(std::vector<int64_t>{0, 1, 7, 2, 3, 0}, {3, 2}));
    Tensor y = gather(x, 1, bad);
    bool thrown = false;
    try {
        synchronize();
    } catch (const Error& e) {
        thrown = true;
        REQUIRE_THAT(std::string(e.what()), Contains("gather") && Contains("index 7") && Contains("position 2") &&
                                                Contains("out of range [0, 4)"));
    }
    REQUIRE(thrown);
    // The fault is cleared once thrown; the bad element came out NaN, the others are right.
    const std::vector<float> v = cpu(y).to_vector<float>();
    REQUIRE(std::isnan(v[2]));
    REQUIRE(v[0] == cpu(x).to_vector<float>()[0]);
    REQUIRE_THROWS_WITH(
        index_select(x, 0, gpu(Tensor::from_vector(std::vector<int32_t>{1, -1}, {2}))).to(Device::cpu()),
        Contains("index_select") && Contains("index -1") && Contains("position 1") && Contains("[0, 3)"));
    // The GPU stays usable: a good call matches naive and nothing more is thrown.
    const Tensor good = Tensor::from_vector(std::vector<int64_t>{2, 0}, {2});
    require_identical(test::naive_reference([&] { return index_select(cpu(x), 1, good); }),
                      cpu(index_select(x, 1, gpu(good))));
    REQUIRE_NOTHROW(synchronize());
}
