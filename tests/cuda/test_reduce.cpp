// CUDA reductions against the naive CPU kernels: sum, mean, max, argmax, min and argmin over every dim set the CPU
// tests use (every layout, with gradients through autograd), the kernels directly on crafted data
// (ties, NaN, infinities, signed zeros) at shapes that reach every GPU path (warp per row, block per
// row, split rows, columns, split columns), the accumulate contract of the backward kernels, and run to
// run determinism.
//
// max, argmax, min, argmin and every backward are exact: they select an element or add the same float terms as
// naive. Sums add in float in a tree where naive adds in double: rtol kReduceRtol, and an atol for
// results near 0 of 1e-6 * sqrt(reduce length) (rounding errors of a sum grow like a random walk; the
// CPU tests use the same bound for omp's float sums), at least kReduceAtol.
#include "support/catch.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cuda/gpu.h"
#include "dyad/dyad.h"
#include "kernels/cuda/runtime.h"
#include "kernels/reduce.h"
#include "support/compare.h"
#include "support/elementwise_cases.h"
#include "support/random.h"
#include "support/reduce_cases.h"
#include "support/shapes.h"
#include "support/unwritten.h"

using namespace dyad;
using test::AllClose;
using test::count_nan;
using test::cpu;
using test::gpu;
using test::Layout;
using test::require_identical;
using test::same_bits;
using test::values;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

double sum_atol(double terms) { return std::max(test::kReduceAtol, 1e-6 * std::sqrt(terms)); }

std::vector<int32_t> indices(const Tensor& t) {
    REQUIRE(t.dtype() == DType::int32);
    return cpu(t).contiguous().to_vector<int32_t>();
}

std::vector<float> floats(const Tensor& t) { return cpu(t).contiguous().to_vector<float>(); }

std::string rs_str(const ReduceShape& s) {
    return "(" + std::to_string(s.outer) + ", " + std::to_string(s.reduce) + ", " + std::to_string(s.inner) + ")";
}

// Shapes for the kernels directly: the CPU list plus shapes that reach every GPU mapping. inner == 1:
// rows up to 1024 take a warp each, longer ones a block each, split into chunks when there are fewer
// than 1024 rows. inner > 1: columns, split along r when there are fewer than 1024 tiles of 32.
std::vector<ReduceShape> gpu_reduce_shapes() {
    std::vector<ReduceShape> s = test::crafted_reduce_shapes();
    const ReduceShape more[] = {
        {1, 1024, 1},     // the longest warp row
        {1, 1025, 1},     // the shortest block row (split into chunks: one row)
        {1100, 1500, 1},  // a block per row, no split
        {3, 1, 1},        // reduce == 1 on rows
        {1, 5, 40000},    // columns, no split (1250 tiles)
        {2, 3000, 33},    // columns split along r, a tile crossing an outer boundary
        {1, 100000, 2},   // columns split into many chunks
    };
    s.insert(s.end(), std::begin(more), std::end(more));
    return s;
}

}  // namespace

TEST_CASE("cuda sum, mean, max, argmax, min and argmin match naive on the shared shapes, every layout",
          "[cuda][reduce]") {
    uint64_t seed = 100;
    int num_cases = 0;
    for (const Shape& shape : test::unary_shapes()) {
        const int64_t nd = int64_t(shape.size());
        const std::vector<std::vector<int64_t>> dim_sets = test::reduce_dim_sets(nd);
        for (Layout layout : test::kLayouts) {
            const Tensor x = test::random_tensor(shape, seed++, layout);
            const Tensor xg = test::same_layout_on(x, layout, Device::cuda());
            REQUIRE(xg.strides() == x.strides());
            for (size_t s = 0; s <= dim_sets.size(); s++) {
                const bool over_all = s == dim_sets.size();
                const std::vector<int64_t> dims = over_all ? std::vector<int64_t>{} : dim_sets[s];
                const bool keepdim = s % 2 == 1;
                INFO("shape " << shape_str(shape) << " " << test::layout_name(layout) << " dims "
                              << (over_all ? std::string("all") : shape_str(dims)) << " keepdim " << keepdim);
                num_cases++;

                struct Results {
                    Tensor sum, mean, max, min, sum_grad, mean_grad, max_grad, min_grad, argmax, argmin;
                };
                Tensor dy;
                auto run = [&](const Tensor& x0, const Tensor& dy0) {
                    Results r;
                    Tensor xr = x0.detach().requires_grad_();
                    r.sum = over_all ? sum(xr) : sum(xr, dims, keepdim);
                    r.mean = over_all ? mean(xr) : mean(xr, dims, keepdim);
                    r.max = over_all ? max(xr) : max(xr, dims, keepdim);
                    r.min = over_all ? min(xr) : min(xr, dims, keepdim);
                    r.sum.backward(dy0);
                    r.sum_grad = xr.grad();
                    xr.zero_grad();
                    r.mean.backward(dy0);
                    r.mean_grad = xr.grad();
                    xr.zero_grad();
                    r.max.backward(dy0);
                    r.max_grad = xr.grad();
                    xr.zero_grad();
                    r.min.backward(dy0);
                    r.min_grad = xr.grad();
                    if (over_all) {
                        r.argmax = argmax(x0);
                        r.argmin = argmin(x0);
                    } else if (dims.size() == 1) {
                        r.argmax = argmax(x0, dims[0], keepdim);
                        r.argmin = argmin(x0, dims[0], keepdim);
                    }
                    return r;
                };
                dy = test::random_tensor((over_all ? sum(x) : sum(x, dims, keepdim)).shape(), seed++);
                const Results e = test::naive_reference([&] { return run(x, dy); });
                const Results a = run(xg, gpu(dy));
                REQUIRE(a.sum.device() == Device::cuda());
                const double n = double(x.numel()) / double(std::max<int64_t>(1, e.sum.numel()));
                REQUIRE(a.sum.shape() == e.sum.shape());
                REQUIRE_THAT(values(a.sum), AllClose(values(e.sum)).rtol(test::kReduceRtol).atol(sum_atol(n)));
                REQUIRE(a.mean.shape() == e.mean.shape());
                REQUIRE_THAT(values(a.mean), AllClose(values(e.mean)).rtol(test::kReduceRtol).atol(sum_atol(n)));
                require_identical(e.max, cpu(a.max));
                require_identical(e.sum_grad, cpu(a.sum_grad));
                require_identical(e.mean_grad, cpu(a.mean_grad));
                require_identical(e.max_grad, cpu(a.max_grad));
                require_identical(e.min, cpu(a.min));
                require_identical(e.min_grad, cpu(a.min_grad));
                REQUIRE(a.argmax.defined() == e.argmax.defined());
                if (e.argmax.defined()) require_identical(e.argmax, cpu(a.argmax));
                if (e.argmin.defined()) require_identical(e.argmin, cpu(a.argmin));
            }
        }
    }
    REQUIRE(num_cases == 162);  // 54 (shape, dims) pairs in 3 layouts
}

TEST_CASE("cuda max and argmax: ties go to the first maximum, NaN wins", "[cuda][reduce]") {
    const Tensor ties = Tensor::from_vector(std::vector<float>{1, 3, 3, 2, 5, 5, 5, 5}, {2, 4});
    const Tensor nans = Tensor::from_vector(std::vector<float>{1, 2, kNaN, 4, 5, kNaN}, {3, 2});
    const Tensor flat_nan = Tensor::from_vector(std::vector<float>{1, kNaN, 7, kNaN}, {4});
    const Tensor infs = Tensor::from_vector(std::vector<float>{-kInf, -kInf, -kInf}, {3});
    const Tensor zeros = Tensor::from_vector(std::vector<float>{-0.0f, 0.0f, -1.0f}, {3});
    for (const Tensor& x : {ties, nans, flat_nan, infs, zeros}) {
        INFO(x.str());
        const Tensor xg = gpu(x);
        // max selects an element: NaN payloads and the sign of zero come through byte for byte.
        require_identical(test::naive_reference([&] { return max(x); }), cpu(max(xg)));
        require_identical(test::naive_reference([&] { return argmax(x); }), cpu(argmax(xg)));
        for (int64_t d = 0; d < x.dim(); d++) {
            require_identical(test::naive_reference([&] { return max(x, {d}); }), cpu(max(xg, {d})));
            require_identical(test::naive_reference([&] { return argmax(x, d); }), cpu(argmax(xg, d)));
        }
    }
    REQUIRE(indices(argmax(gpu(ties), 1)) == std::vector<int32_t>{1, 0});
    REQUIRE(indices(argmax(gpu(nans), 0)) == std::vector<int32_t>{1, 2});
    REQUIRE(indices(argmax(gpu(flat_nan))) == std::vector<int32_t>{1});
    REQUIRE(indices(argmax(gpu(infs))) == std::vector<int32_t>{0});
    REQUIRE(indices(argmax(gpu(zeros))) == std::vector<int32_t>{0});
    REQUIRE(std::signbit(max(gpu(zeros)).item()));
    // The gradient goes to the first maximum only.
    Tensor r = gpu(ties).detach().requires_grad_();
    max(r, {1}).backward(gpu(Tensor::from_vector(std::vector<float>{10, 20}, {2})));
    REQUIRE(values(r.grad()) == std::vector<double>{0, 10, 0, 0, 20, 0, 0, 0});
}

TEST_CASE("cuda min and argmin: ties go to the first minimum, NaN wins", "[cuda][reduce]") {
    const Tensor ties = Tensor::from_vector(std::vector<float>{3, 1, 1, 2, 5, 5, 5, 5}, {2, 4});
    const Tensor nans = Tensor::from_vector(std::vector<float>{1, 2, kNaN, 4, 5, kNaN}, {3, 2});
    const Tensor infs = Tensor::from_vector(std::vector<float>{kInf, kInf, kInf}, {3});
    const Tensor zeros = Tensor::from_vector(std::vector<float>{0.0f, -0.0f, 1.0f}, {3});
    for (const Tensor& x : {ties, nans, infs, zeros}) {
        INFO(x.str());
        const Tensor xg = gpu(x);
        require_identical(test::naive_reference([&] { return min(x); }), cpu(min(xg)));
        require_identical(test::naive_reference([&] { return argmin(x); }), cpu(argmin(xg)));
        for (int64_t d = 0; d < x.dim(); d++) {
            require_identical(test::naive_reference([&] { return min(x, {d}); }), cpu(min(xg, {d})));
            require_identical(test::naive_reference([&] { return argmin(x, d); }), cpu(argmin(xg, d)));
        }
    }
    REQUIRE(indices(argmin(gpu(ties), 1)) == std::vector<int32_t>{1, 0});
    REQUIRE(indices(argmin(gpu(nans), 0)) == std::vector<int32_t>{1, 2});
    REQUIRE(indices(argmin(gpu(zeros))) == std::vector<int32_t>{0});
    REQUIRE_FALSE(std::signbit(min(gpu(zeros)).item()));
    Tensor r = gpu(ties).detach().requires_grad_();
    min(r, {1}).backward(gpu(Tensor::from_vector(std::vector<float>{10, 20}, {2})));
    REQUIRE(values(r.grad()) == std::vector<double>{0, 10, 0, 0, 20, 0, 0, 0});
}

TEST_CASE("cuda sums over empty dims are 0 and empty results stay empty", "[cuda][reduce]") {
    const Tensor e = Tensor::ones({2, 0}, DType::float32, Device::cuda());
    const Tensor y = sum(e, {1});
    REQUIRE(y.shape() == Shape{2});
    REQUIRE(values(y) == std::vector<double>{0, 0});
    REQUIRE(sum(Tensor::zeros({0}, DType::float32, Device::cuda())).item() == 0);
    REQUIRE(sum(Tensor::zeros({3, 0}, DType::float32, Device::cuda()), {0}).shape() == Shape{0});
    REQUIRE(max(Tensor::zeros({0, 3}, DType::float32, Device::cuda()), {1}).shape() == Shape{0});
    REQUIRE(sum(Tensor::full({}, 2.5, DType::float32, Device::cuda())).item() == 2.5);
    REQUIRE(max(Tensor::full({}, -1.5, DType::float32, Device::cuda())).item() == -1.5);
}

TEST_CASE("cuda reduce kernels match naive on crafted data", "[cuda][reduce]") {
    cuda::use_device(0);
    std::mt19937 gen(7);
    for (const ReduceShape& s : gpu_reduce_shapes()) {
        const int64_t n = s.outer * s.reduce * s.inner, m = s.outer * s.inner;
        for (test::ReduceData kind : test::kReduceData) {
            INFO("shape " << rs_str(s) << " data " << test::reduce_data_name(kind));
            std::normal_distribution<float> normal;
            const std::vector<float> x = test::crafted_reduce_data(kind, size_t(n), gen, normal);
            // Outputs start as NaN (indices as -1) on both sides: an element left unwritten fails.
            std::vector<float> y_naive = test::nan_filled<float>(m);
            std::vector<int32_t> i_naive(static_cast<size_t>(m), test::kUnwrittenIndex);
            naive::max_fwd<float>(y_naive.data(), i_naive.data(), x.data(), s);
            REQUIRE(std::all_of(i_naive.begin(), i_naive.end(), [&](int32_t i) { return i >= 0 && i < s.reduce; }));

            const double unwritten = double(test::kUnwrittenIndex);
            const Tensor xg = gpu(Tensor::from_vector(x, {n}));
            const Tensor yg = test::nan_tensor(m, Device::cuda());
            const Tensor ig = Tensor::full({m}, unwritten, DType::int32, Device::cuda());
            const Tensor ig_only = Tensor::full({m}, unwritten, DType::int32, Device::cuda());
            cuda::max_fwd(yg.data<float>(), ig.data<int32_t>(), xg.data<float>(), s);
            cuda::max_fwd(nullptr, ig_only.data<int32_t>(), xg.data<float>(), s);
            REQUIRE(same_bits(floats(yg), y_naive));
            REQUIRE(indices(ig) == i_naive);
            REQUIRE(indices(ig_only) == i_naive);
            // min_fwd: the same, into fresh outputs.
            std::vector<float> mn_naive = test::nan_filled<float>(m);
            std::vector<int32_t> j_naive(static_cast<size_t>(m), test::kUnwrittenIndex);
            naive::min_fwd<float>(mn_naive.data(), j_naive.data(), x.data(), s);
            const Tensor mg = test::nan_tensor(m, Device::cuda());
            const Tensor jg = Tensor::full({m}, unwritten, DType::int32, Device::cuda());
            const Tensor jg_only = Tensor::full({m}, unwritten, DType::int32, Device::cuda());
            cuda::min_fwd(mg.data<float>(), jg.data<int32_t>(), xg.data<float>(), s);
            cuda::min_fwd(nullptr, jg_only.data<int32_t>(), xg.data<float>(), s);
            REQUIRE(same_bits(floats(mg), mn_naive));
            REQUIRE(indices(jg) == j_naive);
            REQUIRE(indices(jg_only) == j_naive);

            // Backward kernels accumulate into a dx that already holds values: exact.
            std::vector<float> dy(static_cast<size_t>(m)), dx_naive(static_cast<size_t>(n));
            for (auto& v : dy) v = normal(gen);
            for (auto& v : dx_naive) v = normal(gen);
            const Tensor dyg = gpu(Tensor::from_vector(dy, {m})), dxg = gpu(Tensor::from_vector(dx_naive, {n}));
            naive::max_bwd<float>(dx_naive.data(), dy.data(), i_naive.data(), s);
            cuda::max_bwd(dxg.data<float>(), dyg.data<float>(), ig.data<int32_t>(), s);
            REQUIRE(same_bits(floats(dxg), dx_naive));
            naive::sum_bwd<float>(dx_naive.data(), dy.data(), s, 0.25f);
            cuda::sum_bwd(dxg.data<float>(), dyg.data<float>(), s, 0.25f);
            REQUIRE(same_bits(floats(dxg), dx_naive));

            if (kind != test::ReduceData::normal && kind != test::ReduceData::ties) continue;
            y_naive = test::nan_filled<float>(m);
            const Tensor ys = test::nan_tensor(m, Device::cuda());
            naive::sum_fwd<float>(y_naive.data(), x.data(), s, 0.5f);
            cuda::sum_fwd(ys.data<float>(), xg.data<float>(), s, 0.5f);
            REQUIRE(count_nan(y_naive) == 0);
            REQUIRE_THAT(floats(ys), AllClose(y_naive).rtol(test::kReduceRtol).atol(sum_atol(double(s.reduce))));
        }
    }
}

TEST_CASE("cuda sum_fwd over an empty reduce dim writes scaled zeros", "[cuda][reduce]") {
    cuda::use_device(0);
    const ReduceShape s{3, 0, 2};
    const Tensor yg = Tensor::full({6}, 5.0, DType::float32, Device::cuda());
    const Tensor xg = Tensor::zeros({1}, DType::float32, Device::cuda());  // never read
    cuda::sum_fwd(yg.data<float>(), xg.data<float>(), s, 0.5f);
    REQUIRE(values(yg) == std::vector<double>(6, 0.0));
}

TEST_CASE("cuda sums give the same bits from run to run", "[cuda][reduce]") {
    // Splits depend on the shape only and every combine happens in a fixed order.
    cuda::use_device(0);
    const ReduceShape shapes[] = {{1, 300001, 1}, {1, 1024, 4096}, {64, 1000, 1}, {3, 5000, 70}, {64, 131072, 1}};
    for (const ReduceShape& s : shapes) {
        INFO("shape " << rs_str(s));
        const Tensor xg = gpu(test::random_tensor({s.outer * s.reduce * s.inner}, 11));
        const Tensor y1 = test::nan_tensor(s.outer * s.inner, Device::cuda());
        const Tensor y2 = test::nan_tensor(s.outer * s.inner, Device::cuda());
        cuda::sum_fwd(y1.data<float>(), xg.data<float>(), s, 1.0f);
        cuda::sum_fwd(y2.data<float>(), xg.data<float>(), s, 1.0f);
        REQUIRE(count_nan(floats(y1)) == 0);
        REQUIRE(same_bits(floats(y1), floats(y2)));
    }
}
