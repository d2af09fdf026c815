// Index family (gather, index_select, topk): hand-checked values, repeated indices in backward, the tie and
// NaN rules of topk against an independent reference, omp-vs-naive parity (exact) through the frontend and
// on the kernels directly, float64 gradient checks, and errors (bad indices named with their position).
#include "support/catch.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/index.h"
#include "support/compare.h"
#include "support/elementwise_cases.h"  // same_layout_on
#include "support/index_cases.h"
#include "support/random.h"
#include "support/unwritten.h"

using namespace dyad;
using test::AllClose;
using test::Layout;
using test::make;
using test::require_identical;
using test::values;

namespace {

constexpr CpuKernels kKernelSets[] = {CpuKernels::naive, CpuKernels::omp};
constexpr DType kIndexTypes[] = {DType::int32, DType::int64};
constexpr Layout kLayouts[] = {Layout::contiguous, Layout::transposed, Layout::strided};
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

Tensor ints(const std::vector<int64_t>& v, const Shape& shape, DType dtype = DType::int64) {
    return Tensor::from_vector(v, shape).to(dtype);
}

std::vector<int64_t> longs(const Tensor& t) {
    REQUIRE(t.dtype() == DType::int64);
    return t.contiguous().to_vector<int64_t>();
}

// fn under naive and under omp must give the same bytes.
template <typename F>
void require_parity(F fn) {
    Tensor expected, actual;
    {
        CpuKernelsGuard k(CpuKernels::naive);
        expected = fn();
    }
    {
        CpuKernelsGuard k(CpuKernels::omp);
        actual = fn();
    }
    require_identical(expected, actual);
}

// topk of every (o, :, i) row by an independent rule: a stable sort (ties keep position order) by "NaN
// first, then larger" (largest) or "smaller first, NaN last".
void reference_topk(const Tensor& x, int64_t k, int64_t dim, bool largest, std::vector<double>& vals,
                    std::vector<int64_t>& idx) {
    const std::vector<double> v = values(x);
    const int64_t nd = x.dim(), d = dim < 0 ? dim + nd : dim;
    int64_t outer = 1, reduce = 1, inner = 1;
    for (int64_t q = 0; q < nd; q++) (q < d ? outer : q == d ? reduce : inner) *= x.size(q);
    vals.assign(size_t(outer * k * inner), 0.0);
    idx.assign(vals.size(), -1);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            std::vector<int64_t> pos(static_cast<size_t>(reduce));
            std::iota(pos.begin(), pos.end(), int64_t(0));
            auto at = [&](int64_t r) { return v[size_t((o * reduce + r) * inner + i)]; };
            std::stable_sort(pos.begin(), pos.end(), [&](int64_t a, int64_t b) {
                const double va = at(a), vb = at(b);
                if (largest) return (std::isnan(va) && !std::isnan(vb)) || va > vb;
                return (!std::isnan(va) && std::isnan(vb)) || va < vb;
            });
            for (int64_t j = 0; j < k; j++) {
                vals[size_t((o * k + j) * inner + i)] = at(pos[size_t(j)]);
                idx[size_t((o * k + j) * inner + i)] = pos[size_t(j)];
            }
        }
}

}  // namespace

// ---------------------------------------------------------------------------- known values
TEST_CASE("gather: known values along each dim, int32 and int64 indices, strided x", "[index][naive][omp]") {
    for (CpuKernels k : kKernelSets) {
        for (DType it : kIndexTypes) {
            CpuKernelsGuard guard(k);
            INFO(cpu_kernels_name(k) << " index " << dtype_name(it));
            const Tensor x = make({1, 2, 3, 4}, {2, 2}, DType::float32);
            // PyTorch's documented example: out[i][j] = x[i][index[i][j]].
            const Tensor g1 = gather(x, 1, ints({0, 0, 1, 0}, {2, 2}, it));
            REQUIRE(g1.shape() == Shape{2, 2});
            REQUIRE(g1.dtype() == DType::float32);
            REQUIRE(values(g1) == std::vector<double>{1, 1, 4, 3});
            // Along dim 0, with an index longer than x along dim and narrower in dim 1.
            REQUIRE(values(gather(x, 0, ints({1, 0, 1}, {3, 1}, it))) == std::vector<double>{3, 1, 3});
            REQUIRE(values(gather(x, -2, ints({1, 0, 0, 0}, {2, 2}, it))) == std::vector<double>{3, 2, 1, 2});
            // A transposed x: indices address the view, not the memory.
            REQUIRE(values(gather(x.t(), 1, ints({1, 1, 0, 1}, {2, 2}, it))) == std::vector<double>{3, 3, 2, 4});
            REQUIRE(gather(x, 1, ints({}, {2, 0}, it)).shape() == Shape{2, 0});
            const Tensor s = gather(Tensor::full({}, 2.5), 0, Tensor::zeros({}, it));
            REQUIRE(s.shape() == Shape{});
            REQUIRE(s.item() == 2.5);
        }
    }
}

TEST_CASE("index_select: known values, repeated and empty index, 0-d index", "[index][naive][omp]") {
    for (CpuKernels k : kKernelSets) {
        for (DType it : kIndexTypes) {
            CpuKernelsGuard guard(k);
            INFO(cpu_kernels_name(k) << " index " << dtype_name(it));
            const Tensor x = Tensor::arange(0, 12).reshape({3, 4});
            const Tensor r = index_select(x, 0, ints({2, 0, 2}, {3}, it));
            REQUIRE(r.shape() == Shape{3, 4});
            REQUIRE(values(r) == std::vector<double>{8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11});
            REQUIRE(values(index_select(x, -1, ints({3, 1}, {2}, it))) == std::vector<double>{3, 1, 7, 5, 11, 9});
            REQUIRE(values(index_select(x.t(), 1, ints({1}, {1}, it))) == std::vector<double>{4, 5, 6, 7});
            REQUIRE(index_select(x, 1, ints({}, {0}, it)).shape() == Shape{3, 0});
            const Tensor one = index_select(x, 1, Tensor::full({}, 2, it));  // 0-d index: one position
            REQUIRE(one.shape() == Shape{3, 1});
            REQUIRE(values(one) == std::vector<double>{2, 6, 10});
        }
    }
}

TEST_CASE("gather and index_select gradients add up over repeated indices", "[index][naive][omp]") {
    for (CpuKernels k : kKernelSets) {
        CpuKernelsGuard guard(k);
        INFO(cpu_kernels_name(k));
        Tensor x = Tensor::zeros({2, 3}).requires_grad_();
        gather(x, 1, ints({2, 2, 0, 1, 1, 1}, {2, 3})).backward(make({1, 2, 4, 8, 16, 32}, {2, 3}, DType::float32));
        REQUIRE(values(x.grad()) == std::vector<double>{4, 0, 3, 0, 56, 0});
        Tensor w = Tensor::zeros({4, 2}).requires_grad_();  // an embedding table
        index_select(w, 0, ints({3, 0, 3, 3}, {4}, DType::int32))
            .backward(make({1, 2, 3, 4, 5, 6, 7, 8}, {4, 2}, DType::float32));
        REQUIRE(values(w.grad()) == std::vector<double>{3, 4, 0, 0, 0, 0, 1 + 5 + 7, 2 + 6 + 8});
        // A gather of part of x: the rest of the gradient stays 0.
        Tensor y = Tensor::zeros({3, 3}).requires_grad_();
        sum(gather(y, 0, ints({2}, {1, 1}))).backward();
        REQUIRE(values(y.grad()) == std::vector<double>{0, 0, 0, 0, 0, 0, 1, 0, 0});
    }
}

TEST_CASE("topk: known values, ties by position, NaN as the largest, both directions", "[index][naive][omp]") {
    for (CpuKernels k : kKernelSets) {
        for (DType dt : {DType::float32, DType::float64}) {
            CpuKernelsGuard guard(k);
            INFO(cpu_kernels_name(k) << " " << dtype_name(dt));
            const Tensor x = make({3, 1, 4, 1, 5, 9, 2, 6}, {8}, dt);
            TopK t = topk(x, 3);
            REQUIRE(t.values.shape() == Shape{3});
            REQUIRE(t.values.dtype() == dt);
            REQUIRE(t.indices.dtype() == DType::int64);
            REQUIRE(values(t.values) == std::vector<double>{9, 6, 5});
            REQUIRE(longs(t.indices) == std::vector<int64_t>{5, 7, 4});
            t = topk(x, 3, 0, /*largest=*/false);
            REQUIRE(values(t.values) == std::vector<double>{1, 1, 2});
            REQUIRE(longs(t.indices) == std::vector<int64_t>{1, 3, 6});  // the tie: lower position first
            // NaN ranks above +inf: first among the largest, last among the smallest; -0 ties with +0.
            const Tensor n = make({0, kNaN, -kInf, kInf, -0.0, kNaN}, {6}, dt);
            t = topk(n, 4);
            REQUIRE_THAT(values(t.values), AllClose(std::vector<double>{kNaN, kNaN, kInf, 0}));
            REQUIRE(longs(t.indices) == std::vector<int64_t>{1, 5, 3, 0});
            t = topk(n, 6, -1, false);
            REQUIRE_THAT(values(t.values), AllClose(std::vector<double>{-kInf, 0, -0.0, kInf, kNaN, kNaN}));
            REQUIRE(longs(t.indices) == std::vector<int64_t>{2, 0, 4, 3, 1, 5});
            // Along dim 0 of a matrix, and the edge values of k.
            const Tensor m = make({1, 8, 5, 7, 2, 5}, {3, 2}, dt);
            t = topk(m, 2, 0);
            REQUIRE(t.values.shape() == Shape{2, 2});
            REQUIRE(values(t.values) == std::vector<double>{5, 8, 2, 7});
            REQUIRE(longs(t.indices) == std::vector<int64_t>{1, 0, 2, 1});
            REQUIRE(topk(m, 0, 1).values.shape() == Shape{3, 0});
            REQUIRE(values(topk(m, 2, 1).values) == std::vector<double>{8, 1, 7, 5, 5, 2});
            REQUIRE(values(topk(make({4}, {}, dt), 1).values) == std::vector<double>{4});
            REQUIRE(topk(make({4}, {}, dt), 1).values.shape() == Shape{});
            // sorted = false returns the same (sorted) order.
            REQUIRE(longs(topk(x, 4, 0, true, false).indices) == longs(topk(x, 4).indices));
        }
    }
}

TEST_CASE("topk gradient goes to the selected positions", "[index][naive][omp]") {
    for (CpuKernels k : kKernelSets) {
        CpuKernelsGuard guard(k);
        Tensor x = make({3, 1, 4, 1, 5, 9}, {2, 3}, DType::float32).requires_grad_();
        topk(x, 2, 1).values.backward(make({10, 20, 30, 40}, {2, 2}, DType::float32));
        REQUIRE(values(x.grad()) == std::vector<double>{20, 0, 10, 0, 40, 30});
        Tensor y = make({2, 2, 2}, {3}, DType::float32).requires_grad_();
        sum(topk(y, 2, 0, false).values).backward();  // ties: the first two positions
        REQUIRE(values(y.grad()) == std::vector<double>{1, 1, 0});
    }
}

// ---------------------------------------------------------------------------- parity and reference
// Every result is a selected element, every gradient a sum in a fixed order: omp equals naive exactly.
TEST_CASE("gather: omp equals naive on every case, layout and index dtype, forward and backward",
          "[index][naive][omp]") {
    for (const test::GatherCase& c : test::gather_cases()) {
        const int64_t d = c.dim < 0 ? c.dim + int64_t(c.x.size()) : c.dim;
        for (Layout layout : kLayouts) {
            for (DType it : kIndexTypes) {
                INFO("x " << shape_str(c.x) << " dim " << c.dim << " index " << shape_str(c.index) << " "
                          << test::layout_name(layout) << " " << dtype_name(it));
                const Tensor x = test::random_tensor(c.x, 60, layout);
                const Tensor index = test::index_tensor(c.index, c.x[size_t(d)], 61, it);
                const Tensor dy = test::random_tensor(c.index, 62);
                require_parity([&] { return gather(x, c.dim, index); });
                require_parity([&] {
                    Tensor xl = x.detach().requires_grad_();
                    gather(xl, c.dim, index).backward(dy);
                    return xl.grad();
                });
                // Each output is the x element its index names.
                const Tensor out = gather(x, c.dim, index);
                const std::vector<double> xv = values(x), ov = values(out);
                const std::vector<int64_t> iv = longs(index.to(DType::int64));
                int64_t bad = 0;
                for (int64_t p = 0; p < index.numel(); p++) {
                    int64_t q = p, flat = 0, stride = 1;
                    std::vector<int64_t> coord(c.x.size());
                    for (size_t e = c.index.size(); e-- > 0;) coord[e] = q % c.index[e], q /= c.index[e];
                    coord[size_t(d)] = iv[size_t(p)];
                    for (size_t e = c.x.size(); e-- > 0;) flat += coord[e] * stride, stride *= c.x[e];
                    bad += ov[size_t(p)] != xv[size_t(flat)];
                }
                REQUIRE(bad == 0);
            }
        }
    }
}

TEST_CASE("index_select: omp equals naive on every case and layout, forward and backward", "[index][naive][omp]") {
    for (const test::IndexSelectCase& c : test::index_select_cases()) {
        const int64_t d = c.dim < 0 ? c.dim + int64_t(c.x.size()) : c.dim;
        for (Layout layout : kLayouts) {
            for (DType it : kIndexTypes) {
                INFO("x " << shape_str(c.x) << " dim " << c.dim << " n " << c.n << " " << test::layout_name(layout)
                          << " " << dtype_name(it));
                const Tensor x = test::random_tensor(c.x, 63, layout);
                const Tensor index = test::index_tensor({c.n}, c.x[size_t(d)], 64, it);
                Shape out = c.x;
                out[size_t(d)] = c.n;
                const Tensor dy = test::random_tensor(out, 65);
                require_parity([&] { return index_select(x, c.dim, index); });
                require_parity([&] {
                    Tensor xl = x.detach().requires_grad_();
                    index_select(xl, c.dim, index).backward(dy);
                    return xl.grad();
                });
                // Slice j of the result is slice index[j] of x.
                const Tensor r = index_select(x, c.dim, index);
                const std::vector<int64_t> iv = longs(index.to(DType::int64));
                for (int64_t j = 0; j < std::min<int64_t>(c.n, 5); j++)
                    require_identical(x.select(d, iv[size_t(j)]).contiguous(), r.select(d, j).contiguous());
            }
        }
    }
}

TEST_CASE("gather kernels write every output and accumulate into dx: omp equals naive", "[index][naive][omp]") {
    for (const test::GatherCase& c : test::gather_cases()) {
        const int64_t d = c.dim < 0 ? c.dim + int64_t(c.x.size()) : c.dim;
        INFO("x " << shape_str(c.x) << " dim " << c.dim << " index " << shape_str(c.index));
        const Tensor x = test::random_tensor(c.x, 66, Layout::strided);
        const Tensor index = test::index_tensor(c.index, c.x[size_t(d)], 67, DType::int64);
        GatherShape s;
        s.ndim = int(c.x.size());
        s.dim = int(d);
        s.x_dim_size = c.x[size_t(d)];
        for (int q = 0; q < s.ndim; q++) {
            s.size[q] = c.index[size_t(q)];
            s.x_stride[q] = x.strides()[size_t(q)];
            s.index_stride[q] = index.strides()[size_t(q)];
        }
        const int64_t n = index.numel();
        std::vector<float> y[2] = {test::nan_filled<float>(n), test::nan_filled<float>(n)};
        naive::gather_fwd<float>(y[0].data(), x.data<float>(), index.data<int64_t>(), s);
        omp::gather_fwd(y[1].data(), x.data<float>(), index.data<int64_t>(), s);
        REQUIRE(test::count_nan(y[0]) == 0);
        REQUIRE(test::same_bits(y[0], y[1]));
        // Backward into a contiguous dx holding values: what the kernels add is dy summed per target.
        GatherShape b = s;
        for (int q = s.ndim - 1, st = 1; q >= 0; q--) b.x_stride[q] = st, st *= int(c.x[size_t(q)]);
        const std::vector<float> dy = test::random_tensor(c.index, 68).to_vector<float>();
        const std::vector<float> dx0 = test::random_tensor(c.x, 69).to_vector<float>();
        std::vector<float> dx[2] = {dx0, dx0}, fresh(dx0.size(), 0.0f);
        naive::gather_bwd<float>(dx[0].data(), dy.data(), index.data<int64_t>(), b);
        omp::gather_bwd(dx[1].data(), dy.data(), index.data<int64_t>(), b);
        naive::gather_bwd<float>(fresh.data(), dy.data(), index.data<int64_t>(), b);
        REQUIRE(test::same_bits(dx[0], dx[1]));
        REQUIRE(test::added_to(dx[0], dx0, fresh));
        double total = 0, expect = 0;
        for (float v : fresh) total += double(v);
        for (float v : dy) expect += double(v);
        // Every dy lands somewhere: the totals agree up to the float rounding of the per-target sums (up to
        // 77k unit-normal terms in all, each sum rounded to 2^-24 of its size: far below 1e-3).
        REQUIRE(total == Approx(expect).margin(1e-3));
    }
}

TEST_CASE("topk: both kernel sets equal an independent stable-sort reference on every case and data kind",
          "[index][naive][omp]") {
    for (const test::TopkCase& c : test::topk_cases()) {
        for (test::TopkData kind : test::kTopkData) {
            for (bool largest : {true, false}) {
                INFO("x " << shape_str(c.x) << " k " << c.k << " dim " << c.dim << " " << test::topk_data_name(kind)
                          << (largest ? " largest" : " smallest"));
                const Tensor x = test::topk_data(c.x, kind, 70);
                std::vector<double> rv;
                std::vector<int64_t> ri;
                reference_topk(x, c.k, c.dim, largest, rv, ri);
                TopK t[2];
                for (int set = 0; set < 2; set++) {
                    CpuKernelsGuard guard(kKernelSets[set]);
                    t[set] = topk(x, c.k, c.dim, largest);
                }
                require_identical(t[0].values, t[1].values);
                require_identical(t[0].indices, t[1].indices);
                REQUIRE(longs(t[0].indices) == ri);
                REQUIRE_THAT(values(t[0].values), AllClose(rv));
                // A strided view of the same values gives the same answer.
                const Tensor xs = test::same_layout_on(x, Layout::strided, Device::cpu());
                require_identical(t[0].indices, topk(xs, c.k, c.dim, largest).indices);
            }
        }
    }
}

// ---------------------------------------------------------------------------- gradients
TEST_CASE("gather, index_select and topk: gradcheck", "[index][gradcheck]") {
    const Tensor x = test::random_tensor({3, 4, 5}, 71, Layout::contiguous, DType::float64).requires_grad_();
    for (DType it : kIndexTypes) {
        INFO(dtype_name(it));
        const Tensor gi = test::index_tensor({3, 6, 2}, 4, 72, it);  // repeats along dim 1, narrower in dim 2
        GradcheckResult r = gradcheck([&](const std::vector<Tensor>& v) { return gather(v[0], 1, gi); }, {x});
        INFO("gather: " << r.report);
        REQUIRE(r.ok);
        // x used twice, once through the gather: a non-linear function of gathered values.
        r = gradcheck(
            [&](const std::vector<Tensor>& v) {
                return gather(v[0], -1, test::index_tensor({3, 4, 7}, 5, 73, it)) * sum(v[0]);
            },
            {x});
        INFO("gather * sum: " << r.report);
        REQUIRE(r.ok);
        const Tensor si = ints({4, 0, 4, 2, 4}, {5}, it);
        r = gradcheck([&](const std::vector<Tensor>& v) { return index_select(v[0], 2, si); }, {x});
        INFO("index_select: " << r.report);
        REQUIRE(r.ok);
    }
    // topk needs distinct values (no tie within the finite-difference step): a shuffled ramp.
    std::vector<double> ramp(60);
    for (size_t i = 0; i < ramp.size(); i++) ramp[i] = 0.01 * double((i * 37) % 60) - 0.3;
    const Tensor xr = Tensor::from_vector(ramp, {3, 4, 5}).requires_grad_();
    for (int64_t dim : {0, 1, 2}) {
        for (bool largest : {true, false}) {
            const GradcheckResult r =
                gradcheck([&](const std::vector<Tensor>& v) { return topk(v[0], 2, dim, largest).values; }, {xr});
            INFO("topk dim " << dim << " largest " << largest << ": " << r.report);
            REQUIRE(r.ok);
        }
    }
}

// ---------------------------------------------------------------------------- errors
TEST_CASE("index argument errors name the op, the values and the position", "[index][errors]") {
    using Catch::Contains;
    const Tensor x = Tensor::zeros({3, 4});
    REQUIRE_THROWS_WITH(gather(x, 1, ints({0, 5, 1, 2}, {2, 2})),
                        Contains("gather: index 5 at position (0, 1) is out of range [0, 4) for dim 1 of x (3, 4)"));
    REQUIRE_THROWS_WITH(gather(x, 0, ints({0, -1}, {1, 2}, DType::int32)),
                        Contains("gather: index -1 at position (0, 1)") && Contains("[0, 3)"));
    REQUIRE_THROWS_WITH(gather(x, 1, ints({0}, {1})),
                        Contains("gather") && Contains("(1)") && Contains("as many dims"));
    REQUIRE_THROWS_WITH(gather(x, 1, ints({0, 0, 0, 0}, {4, 1})),
                        Contains("gather: index (4, 1) is larger than x (3, 4) in dim 0"));
    REQUIRE_THROWS_WITH(gather(x, 2, ints({0}, {1, 1})), Contains("gather: dim 2 is out of range"));
    REQUIRE_THROWS_WITH(gather(x, 1, Tensor::zeros({3, 4})),
                        Contains("gather: index must be int32 or int64") && Contains("float32"));
    REQUIRE_THROWS_WITH(gather(Tensor::zeros({3, 4}, DType::int64), 1, ints({0}, {1, 1})),
                        Contains("gather") && Contains("int64"));
    REQUIRE_THROWS_WITH(gather(x, 1, Tensor()), Contains("gather") && Contains("index") && Contains("undefined"));

    REQUIRE_THROWS_WITH(index_select(x, 1, ints({0, 3, 4}, {3})),
                        Contains("index_select: index 4 at position 2 is out of range [0, 4) for dim 1 of x (3, 4)"));
    REQUIRE_THROWS_WITH(index_select(x, 0, ints({int64_t(1) << 40}, {1})), Contains("index 1099511627776"));
    REQUIRE_THROWS_WITH(index_select(x, 0, ints({0, 1}, {1, 2})),
                        Contains("index_select: index must be 1-D") && Contains("(1, 2)"));
    REQUIRE_THROWS_WITH(index_select(x, -3, ints({0}, {1})), Contains("index_select: dim -3"));
    REQUIRE_THROWS_WITH(index_select(x, 0, Tensor::zeros({2}, DType::uint8)),
                        Contains("index_select") && Contains("uint8"));

    REQUIRE_THROWS_WITH(topk(x, 5), Contains("topk: k = 5 is out of range [0, 4]") && Contains("(3, 4)"));
    REQUIRE_THROWS_WITH(topk(x, -1, 0), Contains("topk: k = -1"));
    REQUIRE_THROWS_WITH(topk(x, 1, 2), Contains("topk: dim 2 is out of range"));
    REQUIRE_THROWS_WITH(topk(Tensor::zeros({4}, DType::int32), 1), Contains("topk") && Contains("int32"));
    REQUIRE_THROWS_WITH(topk(Tensor::full({}, 1.0), 0), Contains("topk") && Contains("0-d"));
    // A failed call changes nothing: the index can be fixed and the op run again.
    REQUIRE(values(index_select(x + 1.0, 1, ints({0, 3}, {2}))) == std::vector<double>(6, 1.0));
}
