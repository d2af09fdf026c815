// The index family (gather, index_select, topk) on every kernel set against the naive reference: gather
// and index_select forward and backward on every case, layout and index dtype (and each output the element
// its index names), the gather kernels directly (every output written; backward accumulates, every dy
// lands somewhere), and topk on every case and data kind in both directions against naive and an
// independent stable-sort reference, on strided views too, with its gradient.
//
// Everything is exact: gather and topk select elements, and gather's backward adds each column's terms in
// naive's order (one thread per column, no atomics), so even repeated indices give naive's bits. Known
// values, gradient checks and errors: tests/kernels/test_index.cpp; the GPU's deferred bad-index errors:
// tests/cuda/test_index.cpp.
#include "support/catch.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/index.h"
#include "support/compare.h"
#include "support/elementwise_cases.h"  // same_layout_on
#include "support/index_cases.h"
#include "support/kernel_sets.h"
#include "support/random.h"
#include "support/tolerances.h"
#include "support/unwritten.h"

using namespace dyad;
using test::Layout;

namespace {

constexpr DType kIndexTypes[] = {DType::int32, DType::int64};

std::vector<int64_t> longs(const Tensor& t) {
    REQUIRE(t.dtype() == DType::int64);
    return t.to(Device::cpu()).contiguous().to_vector<int64_t>();
}

// The forward and the gradient of x through f, on whatever device x is.
template <typename F>
std::pair<Tensor, Tensor> run(const Tensor& x, const Tensor& dy, F f) {
    Tensor xl = x.detach().requires_grad_();
    Tensor y = f(xl);
    y.backward(dy);
    return {y, xl.grad()};
}

// topk of every (o, :, i) row by an independent rule: a stable sort (ties keep position order) by "NaN
// first, then larger" (largest) or "smaller first, NaN last".
void reference_topk(const Tensor& x, int64_t k, int64_t dim, bool largest, std::vector<double>& vals,
                    std::vector<int64_t>& idx) {
    const std::vector<double> v = test::values(x);
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

// The gather kernels of set ks on case c with index type I, against naive. x is a strided view; gather_fwd
// writes every output of a NaN buffer; gather_bwd adds into a dx holding values.
template <typename I>
void check_gather_kernels(const test::KernelSet& ks, const test::GatherCase& c, DType it) {
    const int64_t d = c.dim < 0 ? c.dim + int64_t(c.x.size()) : c.dim;
    const Tensor x = test::random_tensor(c.x, 66, Layout::strided);
    const Tensor index = test::index_tensor(c.index, c.x[size_t(d)], 67, it);
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
    std::vector<float> y = test::nan_filled<float>(n);
    naive::gather_fwd<float>(y.data(), x.data<float>(), index.data<I>(), s);
    REQUIRE(test::count_nan(y) == 0);
    const Tensor xs = test::same_layout_on(x, Layout::strided, ks.device), is = test::on(ks, index);
    REQUIRE(xs.strides() == x.strides());
    const Tensor ys = test::nan_buffer(ks, n);
    DYAD_KCALL(ks, gather_fwd, test::ptr(ys), test::ptr(xs), test::ptr<I>(is), s);
    test::require_close(y, test::host(ys), test::tol::exact(ks));

    // Backward into a contiguous dx holding values: what the kernels add is dy summed per target.
    GatherShape b = s;
    for (int q = s.ndim - 1, st = 1; q >= 0; q--) b.x_stride[q] = st, st *= int(c.x[size_t(q)]);
    const std::vector<float> dy = test::random_tensor(c.index, 68).to_vector<float>();
    const std::vector<float> dx0 = test::random_tensor(c.x, 69).to_vector<float>();
    std::vector<float> dx = dx0, fresh(dx0.size(), 0.0f);
    naive::gather_bwd<float>(dx.data(), dy.data(), index.data<I>(), b);
    naive::gather_bwd<float>(fresh.data(), dy.data(), index.data<I>(), b);
    const Tensor dys = test::buffer(ks, dy), dxs = test::buffer(ks, dx0);
    const Tensor fresh_s = test::buffer(ks, std::vector<float>(dx0.size(), 0.0f));
    DYAD_KCALL(ks, gather_bwd, test::ptr(dxs), test::ptr(dys), test::ptr<I>(is), b);
    DYAD_KCALL(ks, gather_bwd, test::ptr(fresh_s), test::ptr(dys), test::ptr<I>(is), b);
    const std::vector<float> dx_set = test::host(dxs), fresh_set = test::host(fresh_s);
    test::require_close(dx, dx_set, test::tol::exact(ks));
    test::require_close(fresh, fresh_set, test::tol::exact(ks));
    REQUIRE(test::added_to(dx_set, dx0, fresh_set));
    // Every dy lands somewhere: the totals agree up to the float rounding of the per-target sums.
    double total = 0, expect = 0;
    for (float v : fresh_set) total += double(v);
    for (float v : dy) expect += double(v);
    test::require_close(std::vector<double>{expect}, std::vector<double>{total}, test::tol::gather_bwd_total(ks));
}

}  // namespace

DYAD_KERNEL_TEST("gather equals naive on every case, layout and index dtype, forward and backward", "[index]") {
    for (const test::GatherCase& c : test::gather_cases()) {
        const int64_t d = c.dim < 0 ? c.dim + int64_t(c.x.size()) : c.dim;
        for (Layout layout : test::kLayouts) {
            for (DType it : kIndexTypes) {
                INFO("x " << shape_str(c.x) << " dim " << c.dim << " index " << shape_str(c.index) << " "
                          << test::layout_name(layout) << " " << dtype_name(it));
                const Tensor x = test::random_tensor(c.x, 60, layout);
                const Tensor index = test::index_tensor(c.index, c.x[size_t(d)], 61, it);
                const Tensor dy = test::random_tensor(c.index, 62);
                const Tensor xs = test::same_layout_on(x, layout, ks.device), is = test::on(ks, index);
                REQUIRE(xs.strides() == x.strides());
                const auto e = test::naive_reference(
                    [&] { return run(x, dy, [&](const Tensor& xl) { return gather(xl, c.dim, index); }); });
                const auto a = run(xs, test::on(ks, dy), [&](const Tensor& xl) { return gather(xl, c.dim, is); });
                REQUIRE(a.first.device() == ks.device);
                test::require_close(e.first, a.first, test::tol::exact(ks));
                test::require_close(e.second, a.second, test::tol::exact(ks));
                // Each output is the x element its index names.
                const std::vector<double> xv = test::values(x), ov = test::values(a.first);
                const std::vector<int64_t> iv = longs(index.to(DType::int64));
                int64_t bad = 0;
                for (int64_t p = 0; p < index.numel(); p++) {
                    int64_t q = p, flat = 0, stride = 1;
                    std::vector<int64_t> coord(c.x.size());
                    for (size_t k = c.index.size(); k-- > 0;) coord[k] = q % c.index[k], q /= c.index[k];
                    coord[size_t(d)] = iv[size_t(p)];
                    for (size_t k = c.x.size(); k-- > 0;) flat += coord[k] * stride, stride *= c.x[k];
                    bad += ov[size_t(p)] != xv[size_t(flat)];
                }
                REQUIRE(bad == 0);
            }
        }
    }
}

DYAD_KERNEL_TEST("index_select equals naive on every case, layout and index dtype, forward and backward", "[index]") {
    for (const test::IndexSelectCase& c : test::index_select_cases()) {
        const int64_t d = c.dim < 0 ? c.dim + int64_t(c.x.size()) : c.dim;
        for (Layout layout : test::kLayouts) {
            for (DType it : kIndexTypes) {
                INFO("x " << shape_str(c.x) << " dim " << c.dim << " n " << c.n << " " << test::layout_name(layout)
                          << " " << dtype_name(it));
                const Tensor x = test::random_tensor(c.x, 63, layout);
                const Tensor index = test::index_tensor({c.n}, c.x[size_t(d)], 64, it);
                Shape out = c.x;
                out[size_t(d)] = c.n;
                const Tensor dy = test::random_tensor(out, 65);
                const Tensor xs = test::same_layout_on(x, layout, ks.device), is = test::on(ks, index);
                REQUIRE(xs.strides() == x.strides());
                const auto e = test::naive_reference(
                    [&] { return run(x, dy, [&](const Tensor& xl) { return index_select(xl, c.dim, index); }); });
                const auto a = run(xs, test::on(ks, dy), [&](const Tensor& xl) { return index_select(xl, c.dim, is); });
                REQUIRE(a.first.device() == ks.device);
                test::require_close(e.first, a.first, test::tol::exact(ks));
                test::require_close(e.second, a.second, test::tol::exact(ks));
                // Slice j of the result is slice index[j] of x.
                const std::vector<int64_t> iv = longs(index.to(DType::int64));
                for (int64_t j = 0; j < std::min<int64_t>(c.n, 5); j++)
                    test::require_close(x.select(d, iv[size_t(j)]).contiguous(), a.first.select(d, j).contiguous(),
                                        test::tol::exact(ks));
            }
        }
    }
}

DYAD_KERNEL_TEST("gather kernels write every output and accumulate into dx like naive", "[index]") {
    for (const test::GatherCase& c : test::gather_cases()) {
        for (DType it : kIndexTypes) {
            INFO("x " << shape_str(c.x) << " dim " << c.dim << " index " << shape_str(c.index) << " "
                      << dtype_name(it));
            if (it == DType::int32)
                check_gather_kernels<int32_t>(ks, c, it);
            else
                check_gather_kernels<int64_t>(ks, c, it);
        }
    }
}

DYAD_KERNEL_TEST("topk equals naive and a stable-sort reference on every case and data kind, both directions",
                 "[index]") {
    for (const test::TopkCase& c : test::topk_cases()) {
        for (test::TopkData kind : test::kTopkData) {
            for (bool largest : {true, false}) {
                INFO("x " << shape_str(c.x) << " k " << c.k << " dim " << c.dim << " " << test::topk_data_name(kind)
                          << (largest ? " largest" : " smallest"));
                const Tensor x = test::topk_data(c.x, kind, 70);
                std::vector<double> rv;
                std::vector<int64_t> ri;
                reference_topk(x, c.k, c.dim, largest, rv, ri);
                const TopK e = test::naive_reference([&] { return topk(x, c.k, c.dim, largest); });
                const TopK a = topk(test::on(ks, x), c.k, c.dim, largest);
                REQUIRE(a.indices.device() == ks.device);
                test::require_close(e.values, a.values, test::tol::exact(ks));
                test::require_close(e.indices, a.indices, test::tol::exact(ks));
                REQUIRE(longs(a.indices) == ri);
                REQUIRE_THAT(test::values(a.values), test::AllClose(rv));
                // A strided view of the same values gives the same answer.
                const Tensor xs = test::same_layout_on(x, Layout::strided, ks.device);
                test::require_close(e.indices, topk(xs, c.k, c.dim, largest).indices, test::tol::exact(ks));
                // The gradient through the values.
                const Tensor dy = test::random_tensor(e.values.shape(), 71);
                const auto f = [&](const Tensor& xl) { return topk(xl, c.k, c.dim, largest).values; };
                const auto eg = test::naive_reference([&] { return run(x, dy, f); });
                const auto ag = run(test::on(ks, x), test::on(ks, dy), f);
                test::require_close(eg.second, ag.second, test::tol::exact(ks));
            }
        }
    }
}
