// Shape family: views without copies (reshape/view, flatten, transpose/permute, slice, select,
// squeeze/unsqueeze, expand), their gradients, and the strided copy kernel behind contiguous().
#include <catch2/catch.hpp>

#include "dyad/dyad.h"
#include "kernels/elementwise.h"
#include "lib/ops/common.h"
#include "lib/tensor/impl.h"
#include "support/compare.h"
#include "support/random.h"

using namespace dyad;
using test::AllClose;
using test::values;

static bool shares_storage(const Tensor& a, const Tensor& b) { return a.impl()->storage == b.impl()->storage; }

TEST_CASE("views share storage and see the right elements", "[shape]") {
    const Tensor a = Tensor::arange(0, 24).reshape({2, 3, 4});
    SECTION("reshape and view") {
        const Tensor r = a.reshape({6, -1});
        REQUIRE(r.shape() == Shape{6, 4});
        REQUIRE(shares_storage(r, a));
        REQUIRE(a.view({4, 6}).strides() == std::vector<int64_t>{6, 1});
    }
    SECTION("flatten") {
        REQUIRE(a.flatten().shape() == Shape{24});
        REQUIRE(a.flatten(1).shape() == Shape{2, 12});
        REQUIRE(a.flatten(0, 1).shape() == Shape{6, 4});
        REQUIRE(shares_storage(a.flatten(1), a));
    }
    SECTION("transpose and permute") {
        const Tensor t = a.transpose(0, 2);
        REQUIRE(t.shape() == Shape{4, 3, 2});
        REQUIRE(shares_storage(t, a));
        REQUIRE(values(t.select(0, 1).select(0, 2)) == std::vector<double>{9, 21});
        const Tensor p = a.permute({1, 2, 0});
        REQUIRE(p.shape() == Shape{3, 4, 2});
        REQUIRE(values(p.select(0, 2).select(0, 3)) == std::vector<double>{11, 23});
    }
    SECTION("slice with steps and negative bounds") {
        const Tensor s = a.slice(2, 1, 4, 2);  // columns 1 and 3
        REQUIRE(s.shape() == Shape{2, 3, 2});
        REQUIRE(shares_storage(s, a));
        REQUIRE(values(s.select(0, 0).select(0, 0)) == std::vector<double>{1, 3});
        REQUIRE(a.slice(1, -2, 100).shape() == Shape{2, 2, 4});  // clamped like Python
        REQUIRE(a.slice(1, 2, 1).shape() == Shape{2, 0, 4});     // empty
    }
    SECTION("select, squeeze, unsqueeze, expand") {
        REQUIRE(values(a.select(1, -1).select(0, 1)) == std::vector<double>{20, 21, 22, 23});
        const Tensor u = a.unsqueeze(1);
        REQUIRE(u.shape() == Shape{2, 1, 3, 4});
        REQUIRE(u.squeeze(1).shape() == Shape{2, 3, 4});
        REQUIRE(Tensor::zeros({1, 3, 1}).squeeze().shape() == Shape{3});
        REQUIRE(a.unsqueeze(-1).shape() == Shape{2, 3, 4, 1});
        const Tensor e = Tensor::arange(0, 3).reshape({3, 1}).expand({2, 3, 4});
        REQUIRE(e.strides() == std::vector<int64_t>{0, 1, 0});
        REQUIRE(values(e.select(0, 1).select(0, 2)) == std::vector<double>{2, 2, 2, 2});
    }
}

TEST_CASE("reshape copies only when strides do not allow a view", "[shape]") {
    const Tensor a = Tensor::arange(0, 12).reshape({3, 4});
    const Tensor t = a.t();  // (4, 3), not contiguous
    REQUIRE_THROWS_WITH(t.view({12}), Catch::Contains("view") && Catch::Contains("reshape"));
    const Tensor r = t.reshape({12});
    REQUIRE_FALSE(shares_storage(r, a));
    REQUIRE(values(r) == std::vector<double>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
    // Splitting a transposed dim is still a view.
    const Tensor v = t.view({2, 2, 3});
    REQUIRE(shares_storage(v, a));
    REQUIRE(values(v.select(0, 1).select(0, 0)) == std::vector<double>{2, 6, 10});
}

TEST_CASE("writes through a view reach the base tensor", "[shape]") {
    Tensor a = Tensor::zeros({3, 3});
    a.t().select(0, 1).fill_(7);  // column 1 of a
    REQUIRE(values(a) == std::vector<double>{0, 7, 0, 0, 7, 0, 0, 7, 0});
}

TEST_CASE("view ops pass gradcheck", "[shape][gradcheck]") {
    using V = std::vector<Tensor>;
    manual_seed(11);
    const Tensor x = Tensor::randn({2, 3, 4}, DType::float64).requires_grad_();
    const std::vector<std::pair<const char*, GradFn>> cases = {
        {"reshape",
         [](const V& v) {
             return v[0].reshape({4, 6});
         }},
        {"flatten", [](const V& v) { return v[0].flatten(1); }},
        {"transpose", [](const V& v) { return v[0].transpose(0, 2); }},
        {"permute",
         [](const V& v) {
             return v[0].permute({2, 0, 1});
         }},
        {"slice", [](const V& v) { return v[0].slice(2, 1, 4, 2); }},
        {"select", [](const V& v) { return v[0].select(1, 2); }},
        {"unsqueeze+squeeze", [](const V& v) { return v[0].unsqueeze(0).squeeze(0).unsqueeze(3); }},
        {"expand",
         [](const V& v) {
             return v[0].slice(1, 0, 1).expand({2, 5, 4});
         }},
        {"transpose then reshape (copy)",
         [](const V& v) {
             return v[0].transpose(1, 2).reshape({2, 12});
         }},
        {"contiguous of a permuted view",
         [](const V& v) {
             return v[0].permute({1, 0, 2}).contiguous();
         }},
        {"overlapping slices used twice", [](const V& v) { return add(v[0].slice(2, 0, 3), v[0].slice(2, 1, 4)); }},
        {"to float32 and back", [](const V& v) { return mul(v[0].to(DType::float32).to(DType::float64), 1.0); }},
    };
    for (const auto& [name, fn] : cases) {
        INFO(name);
        // float32 round trip loses precision: check it at float32's resolution.
        GradcheckOptions opt;
        if (std::string(name).find("float32") != std::string::npos) opt.eps = 1e-3, opt.atol = 1e-5, opt.rtol = 1e-4;
        const GradcheckResult r = gradcheck(fn, {x}, opt);
        INFO(r.report);
        REQUIRE(r.ok);
    }
}

TEST_CASE("a view's gradient lands in the viewed elements of the leaf", "[shape]") {
    Tensor x = Tensor::zeros({3, 4}).requires_grad_();
    sum(mul(x.slice(1, 1, 3), 2.0)).backward();
    REQUIRE(values(x.grad()) == std::vector<double>{0, 2, 2, 0, 0, 2, 2, 0, 0, 2, 2, 0});
}

// The strided copy kernel: omp equals naive exactly on permuted, sliced and broadcast views of every
// rank up to 6, with odd sizes.
TEST_CASE("strided copy: omp matches naive exactly", "[shape][omp][naive]") {
    const std::vector<Shape> shapes = {{7},          {3, 5},          {17, 33},          {3, 5, 7},
                                       {2, 3, 5, 7}, {3, 1, 5, 2, 7}, {2, 3, 2, 5, 3, 3}};
    uint64_t seed = 100;
    for (const Shape& s : shapes) {
        const Tensor base = test::random_tensor(s, seed++);
        std::vector<int64_t> rev(s.size());
        for (size_t i = 0; i < s.size(); i++) rev[i] = int64_t(s.size() - 1 - i);
        const std::vector<Tensor> views = {base.permute(rev), base.slice(0, 0, s[0], 2),
                                           test::random_tensor(s, seed++, test::Layout::strided),
                                           base.slice(-1, 0, 1).expand(s)};
        for (const Tensor& v : views) {
            INFO(shape_str(s) << " view " << v.str() << " strides " << shape_str(v.strides()));
            Tensor a, b;
            {
                CpuKernelsGuard g(CpuKernels::naive);
                a = v.clone();
            }
            {
                CpuKernelsGuard g(CpuKernels::omp);
                b = v.clone();
            }
            REQUIRE(a.to_vector<float>() == b.to_vector<float>());
            REQUIRE(values(a) == values(v));
        }
    }
}

TEST_CASE("make_strided merges contiguous dims and drops size-1 dims", "[shape]") {
    const Tensor a = Tensor::zeros({4, 1, 5, 6});
    StridedShape s = detail::make_strided(a.shape(), {a.strides(), a.strides()}, "test");
    REQUIRE(s.ndim == 1);
    REQUIRE(s.size[0] == 120);
    const Tensor t = a.squeeze(1).transpose(1, 2);  // (4, 6, 5)
    s = detail::make_strided(t.shape(), {detail::contiguous_strides(t.shape()), t.strides()}, "test");
    REQUIRE(s.ndim == 3);
    REQUIRE(s.numel() == 120);
    REQUIRE(s.offset(1, 1) == 6);  // next element along the last dim of t is 6 floats away
}

TEST_CASE("view errors name the op and the shapes", "[shape][errors]") {
    const Tensor a = Tensor::zeros({2, 3});
    REQUIRE_THROWS_WITH(a.reshape({4, 2}),
                        Catch::Contains("reshape") && Catch::Contains("(2, 3)") && Catch::Contains("(4, 2)"));
    REQUIRE_THROWS_WITH(a.reshape({-1, -1}), Catch::Contains("only one dim can be -1"));
    REQUIRE_THROWS_WITH(a.transpose(0, 2), Catch::Contains("transpose") && Catch::Contains("dim 2"));
    REQUIRE_THROWS_WITH(a.permute({0, 0}), Catch::Contains("twice"));
    REQUIRE_THROWS_WITH(a.permute({0}), Catch::Contains("permute"));
    REQUIRE_THROWS_WITH(a.select(1, 3), Catch::Contains("select") && Catch::Contains("index 3"));
    REQUIRE_THROWS_WITH(a.slice(0, 0, 2, 0), Catch::Contains("step"));
    REQUIRE_THROWS_WITH(a.squeeze(0), Catch::Contains("squeeze") && Catch::Contains("not 1"));
    REQUIRE_THROWS_WITH(a.expand({3, 3}), Catch::Contains("expand") && Catch::Contains("(3, 3)"));
    REQUIRE_THROWS_WITH(a.flatten(1, 0), Catch::Contains("flatten"));
    REQUIRE_THROWS_WITH(Tensor::zeros({3}).t(), Catch::Contains("2-D"));
    REQUIRE_THROWS_WITH(Tensor::zeros({1, 1, 1, 1, 1, 1, 1, 1, 1}).size(9), Catch::Contains("out of range"));
}
