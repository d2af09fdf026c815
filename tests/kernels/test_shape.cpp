// Shape family: views without copies (reshape/view, flatten, transpose/permute, slice, select,
// squeeze/unsqueeze, expand) and their gradients, and cat and stack (copies into slices of the result):
// known values in naive and omp, gradient checks and errors. Parity of every kernel set with naive (the
// strided copy behind contiguous(), cat and stack): tests/ops/shape.cpp.
#include "support/catch.h"

#include "dyad/dyad.h"
#include "kernels/elementwise.h"
#include "lib/ops/common.h"
#include "lib/tensor/impl.h"
#include "support/compare.h"
#include "support/random.h"
#include "support/shape_cases.h"

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

// ---------------------------------------------------------------------------- cat and stack
namespace {

// The inputs of a cat case: normal values (distinct per input), laid out as asked.
std::vector<Tensor> cat_inputs(const test::CatCase& c, test::Layout layout, DType dtype = DType::float32) {
    std::vector<Tensor> in;
    for (size_t i = 0; i < c.shapes.size(); i++) in.push_back(test::random_tensor(c.shapes[i], 40 + i, layout, dtype));
    return in;
}

}  // namespace

TEST_CASE("cat and stack: known values, zero-size inputs, any dtype", "[shape][naive][omp]") {
    for (CpuKernels k : {CpuKernels::naive, CpuKernels::omp}) {
        CpuKernelsGuard guard(k);
        INFO(cpu_kernels_name(k));
        const Tensor a = Tensor::arange(0, 6).reshape({2, 3}), b = Tensor::arange(10, 14).reshape({2, 2});
        const Tensor c1 = cat({a, b}, 1);
        REQUIRE(c1.shape() == Shape{2, 5});
        REQUIRE(c1.is_contiguous());
        REQUIRE(values(c1) == std::vector<double>{0, 1, 2, 10, 11, 3, 4, 5, 12, 13});
        REQUIRE(values(cat({a, a.slice(0, 1, 2)}, 0)) == std::vector<double>{0, 1, 2, 3, 4, 5, 3, 4, 5});
        REQUIRE(values(cat({a.t(), b}, 0)) == std::vector<double>{0, 3, 1, 4, 2, 5, 10, 11, 12, 13});  // strided
        REQUIRE(values(cat({a, Tensor::zeros({0, 3}), a}, -2)) == values(cat({a, a}, 0)));
        REQUIRE(cat({Tensor::zeros({0, 3})}, 0).shape() == Shape{0, 3});
        REQUIRE(cat({a}, 1).to_vector<float>() == a.to_vector<float>());  // one input: a copy
        REQUIRE_FALSE(cat({a}, 1).impl()->storage == a.impl()->storage);
        const Tensor i = cat({Tensor::from_vector(std::vector<int64_t>{1, int64_t(1) << 40}, {2}),
                              Tensor::from_vector(std::vector<int64_t>{-3}, {1})},
                             0);
        REQUIRE(i.to_vector<int64_t>() == std::vector<int64_t>{1, int64_t(1) << 40, -3});
        REQUIRE(cat({Tensor::full({2}, 7, DType::uint8), Tensor::full({1}, 9, DType::uint8)}).to_vector<uint8_t>() ==
                std::vector<uint8_t>{7, 7, 9});

        const Tensor s0 = stack({a, a * 2.0}, 0);
        REQUIRE(s0.shape() == Shape{2, 2, 3});
        REQUIRE(values(s0) == std::vector<double>{0, 1, 2, 3, 4, 5, 0, 2, 4, 6, 8, 10});
        const Tensor s2 = stack({a, a * 2.0}, -1);
        REQUIRE(s2.shape() == Shape{2, 3, 2});
        REQUIRE(values(s2) == std::vector<double>{0, 0, 1, 2, 2, 4, 3, 6, 4, 8, 5, 10});
        const Tensor s1 = stack({Tensor::full({}, 1.0), Tensor::full({}, 2.0), Tensor::full({}, 3.0)});
        REQUIRE(s1.shape() == Shape{3});
        REQUIRE(values(s1) == std::vector<double>{1, 2, 3});
    }
}

TEST_CASE("cat and stack gradients: each input gets its slice of dy", "[shape][naive][omp]") {
    for (CpuKernels k : {CpuKernels::naive, CpuKernels::omp}) {
        CpuKernelsGuard guard(k);
        Tensor a = Tensor::zeros({2, 2}).requires_grad_();
        Tensor b = Tensor::zeros({2, 1}).requires_grad_();
        const Tensor constant = Tensor::zeros({2, 1});  // needs no gradient: skipped
        cat({a, constant, b, a}, 1).backward(Tensor::arange(0, 12).reshape({2, 6}));
        // a is used twice: its two slices add up.
        REQUIRE(values(a.grad()) == std::vector<double>{0 + 4, 1 + 5, 6 + 10, 7 + 11});
        REQUIRE(values(b.grad()) == std::vector<double>{3, 9});
        Tensor s = Tensor::zeros({3}).requires_grad_();
        stack({s, s * 3.0}, 1).backward(Tensor::arange(0, 6).reshape({3, 2}));
        REQUIRE(values(s.grad()) == std::vector<double>{0 + 3 * 1, 2 + 3 * 3, 4 + 3 * 5});
    }
}

TEST_CASE("cat and stack: gradcheck", "[shape][gradcheck]") {
    for (const test::CatCase& c : test::cat_cases()) {
        int64_t numel = 0;
        for (const Shape& s : c.shapes) numel += shape_numel(s);
        if (numel > 400) continue;  // gradcheck differentiates every element: the small cases suffice
        INFO("first " << shape_str(c.shapes[0]) << " dim " << c.dim);
        std::vector<Tensor> in = cat_inputs(c, test::Layout::contiguous, DType::float64);
        for (Tensor& t : in) t.requires_grad_();
        const int64_t dim = c.dim;
        // cat of the inputs and of the first input again (used twice), times itself: a non-linear use.
        const GradcheckResult r = gradcheck(
            [dim](const std::vector<Tensor>& v) {
                std::vector<Tensor> parts(v.begin(), v.end());
                parts.push_back(v[0]);
                const Tensor y = cat(parts, dim);
                return y * y;
            },
            in);
        INFO(r.report);
        REQUIRE(r.ok);
    }
    for (const test::StackCase& c : test::stack_cases()) {
        if (shape_numel(c.shape) > 100) continue;
        INFO("stack " << shape_str(c.shape) << " dim " << c.dim);
        const Tensor a = test::random_tensor(c.shape, 53, test::Layout::contiguous, DType::float64).requires_grad_();
        const Tensor b = test::random_tensor(c.shape, 54, test::Layout::contiguous, DType::float64).requires_grad_();
        const int64_t dim = c.dim;
        const GradcheckResult r = gradcheck(
            [dim](const std::vector<Tensor>& v) {
                return stack({v[0], v[1] * v[0], v[1]}, dim);
            },
            {a, b});
        INFO(r.report);
        REQUIRE(r.ok);
    }
}

TEST_CASE("cat and stack errors name the op, the tensor and the shapes", "[shape][errors]") {
    using Catch::Contains;
    const Tensor a = Tensor::zeros({2, 3});
    REQUIRE_THROWS_WITH(cat({}, 0), Contains("cat") && Contains("at least one"));
    REQUIRE_THROWS_WITH(cat({a, Tensor::zeros({2, 4})}, 0),
                        Contains("cat: tensor 1 has shape (2, 4) but tensor 0 has (2, 3)") && Contains("dim 1"));
    REQUIRE_THROWS_WITH(cat({a, Tensor::zeros({2, 3, 1})}, 0), Contains("cat") && Contains("3 vs 2 dims"));
    REQUIRE_THROWS_WITH(cat({a, Tensor::zeros({2, 3}, DType::float64)}, 0),
                        Contains("cat: tensor 1 is float64 but tensor 0 is float32"));
    REQUIRE_THROWS_WITH(cat({a, Tensor()}, 0), Contains("cat: tensor 1 is undefined"));
    REQUIRE_THROWS_WITH(cat({a, a}, 2), Contains("cat: dim 2 is out of range") && Contains("2 dims"));
    REQUIRE_THROWS_WITH(cat({Tensor::full({}, 1.0)}, 0), Contains("cat") && Contains("0-d"));
    REQUIRE_THROWS_WITH(stack({}, 0), Contains("stack") && Contains("at least one"));
    REQUIRE_THROWS_WITH(stack({a, Tensor::zeros({3, 2})}, 0),
                        Contains("stack: tensor 1 has shape (3, 2) but tensor 0 has (2, 3)"));
    REQUIRE_THROWS_WITH(stack({a, a}, 3), Contains("stack: dim 3 is out of range") && Contains("3 dims"));
    REQUIRE_THROWS_WITH(stack({a, a}, -4), Contains("stack: dim -4"));
    if (!cuda_available()) return;
    REQUIRE_THROWS_WITH(cat({a, a.to(Device::cuda())}, 0),
                        Contains("cat: tensor 1 is on cuda:0 but tensor 0 is on cpu"));
}
