// CUDA runtime skeleton on a real GPU: device queries, round trips between host and device memory.
#include <catch2/catch.hpp>

#include "dyad/dyad.h"
#include "support/compare.h"

using namespace dyad;

TEST_CASE("cuda device is listed with a name", "[cuda][runtime]") {
    REQUIRE(cuda_device_count() >= 1);
    REQUIRE_FALSE(cuda_device_name(0).empty());
    REQUIRE_THROWS_AS(cuda_device_name(cuda_device_count()), Error);
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

TEST_CASE("full and zeros fill GPU memory", "[cuda][runtime]") {
    const Tensor z = Tensor::zeros({3, 7}, DType::float32, Device::cuda());
    const Tensor f = Tensor::full({5, 33}, 2.5, DType::float32, Device::cuda());
    REQUIRE_THAT(test::values(z), test::AllClose(std::vector<double>(21, 0.0)));
    REQUIRE_THAT(test::values(f), test::AllClose(std::vector<double>(165, 2.5)));
    synchronize();
}

TEST_CASE("a CUDA op without a kernel yet is a clear error", "[cuda][runtime]") {
    const Tensor d = Tensor::ones({4}, DType::float32, Device::cuda());
    REQUIRE_THROWS_WITH(relu(d), Catch::Contains("no CUDA kernel"));
}

TEST_CASE("huge allocations report out of memory with sizes", "[cuda][runtime]") {
    REQUIRE_THROWS_WITH(Tensor::empty({int64_t(1) << 45}, DType::float32, Device::cuda()),
                        Catch::Contains("out of memory") && Catch::Contains("smaller batch"));
}
