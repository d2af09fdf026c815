// Every misuse is a dyad::Error whose message names the file and line, the op and the offending values.
#include "support/catch.h"

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

TEST_CASE("shapes whose element or byte count overflows are errors before any allocation", "[errors]") {
    const int64_t big = int64_t(1) << 32;
    REQUIRE_THROWS_WITH(Tensor::zeros({big, big}), Catch::Contains("(4294967296, 4294967296)") &&
                                                       Catch::Contains("more elements than a 64-bit count"));
    REQUIRE_THROWS_WITH(Tensor::empty({int64_t(1) << 62}),
                        Catch::Contains("needs more bytes than a 64-bit count can hold"));
    // Representable, but more than the machine has: a clear error, not the allocator's failure.
    REQUIRE_THROWS_WITH(Tensor::empty({int64_t(1) << 58}), Catch::Contains("out of host memory allocating"));
    REQUIRE_THROWS_WITH(Tensor::zeros({3, -1}), Catch::Contains("negative size"));
}

TEST_CASE("in-place updates of an expanded view are errors", "[errors]") {
    Tensor base = Tensor::zeros({1, 3});
    Tensor wide = base.expand({4, 3});
    REQUIRE_THROWS_WITH(wide.add_(Tensor::ones({4, 3})),
                        Catch::Contains("add_: in-place update of an expanded view") && Catch::Contains("dimension 0"));
    REQUIRE_THROWS_WITH(wide.fill_(1.0), Catch::Contains("fill_: in-place update of an expanded view"));
    REQUIRE_THROWS_WITH(wide.mul_(2.0), Catch::Contains("mul_"));
    REQUIRE_THROWS_WITH(wide.copy_(Tensor::ones({4, 3})), Catch::Contains("copy_"));
    REQUIRE(base.to_vector<float>() == std::vector<float>(3, 0.0f));
    // A size-1 dimension with stride 0 holds one element: updating it is fine.
    const Tensor row = Tensor::zeros({3});
    Tensor one = row.expand({1, 3});
    one.add_(Tensor::ones({1, 3}));
    REQUIRE(row.to_vector<float>() == std::vector<float>(3, 1.0f));
}

TEST_CASE("backward after an in-place update of a tensor it saved is an error", "[errors][autograd]") {
    const Tensor x = Tensor::randn({2, 3}).requires_grad_();
    Tensor c = Tensor::randn({2, 3});
    SECTION("mul saved its inputs") {
        const Tensor y = sum(mul(x, c));
        c.add_(Tensor::ones({2, 3}));
        REQUIRE_THROWS_WITH(y.backward(), Catch::Contains("backward: a tensor of shape (2, 3) that mul saved") &&
                                              Catch::Contains("updated in place"));
        REQUIRE_FALSE(x.grad().defined());
    }
    SECTION("through a view of the saved tensor") {
        const Tensor y = sum(mul(x, c));
        c.view({6}).mul_(2.0);
        REQUIRE_THROWS_WITH(y.backward(), Catch::Contains("that mul saved"));
    }
    SECTION("an op whose output was saved") {
        Tensor s = softmax(x, 1);
        const Tensor y = sum(s);  // sum saves nothing: the error comes from softmax
        {
            NoGradGuard ng;
            s.fill_(0.0);
        }
        REQUIRE_THROWS_WITH(y.backward(), Catch::Contains("softmax saved"));
    }
    SECTION("add saves nothing: updating its input is harmless") {
        const Tensor y = sum(add(x, c));
        c.add_(Tensor::ones({2, 3}));
        y.backward();
        REQUIRE(x.grad().to_vector<float>() == std::vector<float>(6, 1.0f));
    }
    SECTION("an update before the op is recorded is harmless") {
        c.add_(Tensor::ones({2, 3}));
        const Tensor y = sum(mul(x, c));
        y.backward();
        REQUIRE(x.grad().to_vector<float>() == c.to_vector<float>());
    }
}
