// Every misuse is a dyad::Error whose message names the file and line, the op and the offending values.
#include <catch2/catch.hpp>

#include <regex>

#include "dyad/dyad.h"

using namespace dyad;

TEST_CASE("error messages start with file:line", "[errors]") {
    try {
        (void)add(Tensor::zeros({2, 3}), Tensor::zeros({4}));
        FAIL("no exception");
    } catch (const Error& e) {
        const std::string msg = e.what();
        INFO(msg);
        REQUIRE(std::regex_search(msg, std::regex(R"(^[a-z_]+\.cpp:[0-9]+: add: shapes \(2, 3\) and \(4\))")));
    }
}

TEST_CASE("shape, dtype and dim misuse", "[errors]") {
    const Tensor f = Tensor::zeros({2, 3});
    const Tensor d = Tensor::zeros({2, 3}, DType::float64);
    const Tensor i = Tensor::zeros({2, 3}, DType::int32);
    REQUIRE_THROWS_WITH(f + d,
                        Catch::Contains("dtypes differ") && Catch::Contains("float32") && Catch::Contains("float64"));
    REQUIRE_THROWS_WITH(exp(i), Catch::Contains("exp") && Catch::Contains("int32"));
    REQUIRE_THROWS_WITH(sum(f, {2}), Catch::Contains("dim 2 is out of range") && Catch::Contains("2 dims"));
    REQUIRE_THROWS_WITH(f.data<double>(), Catch::Contains("float32") && Catch::Contains("float64"));
    REQUIRE_THROWS_WITH(f.to_vector<int32_t>(), Catch::Contains("int32"));
    REQUIRE_THROWS_WITH(f.item(), Catch::Contains("item") && Catch::Contains("(2, 3)"));
    REQUIRE_THROWS_WITH(Tensor::from_vector(std::vector<float>{1, 2, 3}, {2, 2}),
                        Catch::Contains("3 values") && Catch::Contains("(2, 2)"));
    REQUIRE_THROWS_WITH(Tensor::zeros({2, -1}), Catch::Contains("negative"));
    REQUIRE_THROWS_WITH(Tensor::arange(0, 1, 0), Catch::Contains("arange"));
    REQUIRE_THROWS_WITH(Tensor::randn({2}, DType::int32), Catch::Contains("randn"));
    REQUIRE_THROWS_WITH(Tensor().shape(), Catch::Contains("undefined"));
    REQUIRE_THROWS_WITH(add(Tensor(), f), Catch::Contains("undefined"));
    REQUIRE_THROWS_WITH(set_num_threads(0), Catch::Contains("set_num_threads"));
}

TEST_CASE("mixing devices is an error naming both devices", "[errors]") {
    // Without a GPU a CUDA tensor cannot even be created: that is the error users meet first.
    if (!cuda_available()) {
        REQUIRE_THROWS_WITH(Tensor::ones({2}).to(Device::cuda()),
                            Catch::Contains("cuda:0") &&
                                (Catch::Contains("no CUDA support") || Catch::Contains("no such CUDA device")));
        return;
    }
    const Tensor c = Tensor::ones({2}, DType::float32, Device::cuda());
    REQUIRE_THROWS_WITH(add(Tensor::ones({2}), c), Catch::Contains("different devices") && Catch::Contains("cuda:0"));
}
