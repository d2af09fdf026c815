// CUDA index kernels against the naive CPU kernels on the shared case lists: gather and index_select
// forward and backward (every case, layout and index dtype), the kernels directly (every output written;
// backward accumulates), topk on every case and data kind, and bad indices reported at the next wait.
//
// Everything is exact: gather and topk select elements, and gather's backward adds each column's terms in
// naive's order (one thread per column, no atomics), so even repeated indices give naive's bits.
#include "support/catch.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "cuda/gpu.h"
#include "dyad/dyad.h"
#include "kernels/cuda/runtime.h"
#include "kernels/index.h"
#include "support/compare.h"
#include "support/elementwise_cases.h"  // same_layout_on
#include "support/index_cases.h"
#include "support/random.h"
#include "support/unwritten.h"

using namespace dyad;
using test::cpu;
using test::gpu;
using test::Layout;
using test::require_identical;

namespace {

constexpr DType kIndexTypes[] = {DType::int32, DType::int64};

// The forward and the gradient of x through f, on whatever device x is.
template <typename F>
std::pair<Tensor, Tensor> run(const Tensor& x, const Tensor& dy, F f) {
    Tensor xl = x.detach().requires_grad_();
    Tensor y = f(xl);
    y.backward(dy);
    return {y, xl.grad()};
}

}  // namespace

TEST_CASE("cuda gather matches naive on every case, layout and index dtype, forward and backward", "[cuda][index]") {
    for (const test::GatherCase& c : test::gather_cases()) {
        const int64_t d = c.dim < 0 ? c.dim + int64_t(c.x.size()) : c.dim;
        for (Layout layout : test::kLayouts) {
            for (DType it : kIndexTypes) {
                INFO("x " << shape_str(c.x) << " dim " << c.dim << " index " << shape_str(c.index) << " "
                          << test::layout_name(layout) << " " << dtype_name(it));
                const Tensor x = test::random_tensor(c.x, 60, layout);
                const Tensor index = test::index_tensor(c.index, c.x[size_t(d)], 61, it);
                const Tensor dy = test::random_tensor(c.index, 62);
                const auto f = [&](const Tensor& xl) {
                    return gather(xl, c.dim, xl.device().is_cuda() ? gpu(index) : index);
                };
                const auto e = test::naive_reference([&] { return run(x, dy, f); });
                const auto a = run(test::same_layout_on(x, layout, Device::cuda()), gpu(dy), f);
                REQUIRE(a.first.device() == Device::cuda());
                require_identical(e.first, cpu(a.first));
                require_identical(e.second, cpu(a.second));
            }
        }
    }
}

TEST_CASE("cuda index_select matches naive on every case and layout, forward and backward", "[cuda][index]") {
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
                const auto f = [&](const Tensor& xl) {
                    return index_select(xl, c.dim, xl.device().is_cuda() ? gpu(index) : index);
                };
                const auto e = test::naive_reference([&] { return run(x, dy, f); });
                const auto a = run(test::same_layout_on(x, layout, Device::cuda()), gpu(dy), f);
                require_identical(e.first, cpu(a.first));
                require_identical(e.second, cpu(a.second));
            }
        }
    }
}

TEST_CASE("cuda gather kernels write every output and accumulate into dx like naive", "[cuda][index]") {
    cuda::use_device(0);
    for (const test::GatherCase& c : test::gather_cases()) {
        const int64_t d = c.dim < 0 ? c.dim + int64_t(c.x.size()) : c.dim;
        INFO("x " << shape_str(c.x) << " dim " << c.dim << " index " << shape_str(c.index));
        const Tensor x = test::random_tensor(c.x, 66, Layout::strided);
        const Tensor index = test::index_tensor(c.index, c.x[size_t(d)], 67, DType::int32);
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
        naive::gather_fwd<float>(y.data(), x.data<float>(), index.data<int32_t>(), s);
        const Tensor xg = test::same_layout_on(x, Layout::strided, Device::cuda()), ig = gpu(index);
        REQUIRE(xg.strides() == x.strides());
        const Tensor yg = test::nan_tensor(n, Device::cuda());
        cuda::gather_fwd(yg.data<float>(), xg.data<float>(), ig.data<int32_t>(), s);
        REQUIRE(test::count_nan(y) == 0);
        REQUIRE(test::same_bits(cpu(yg).to_vector<float>(), y));

        GatherShape b = s;
        for (int q = s.ndim - 1, st = 1; q >= 0; q--) b.x_stride[q] = st, st *= int(c.x[size_t(q)]);
        const Tensor dy = test::random_tensor(c.index, 68), dx0 = test::random_tensor(c.x, 69);
        std::vector<float> dx = dx0.to_vector<float>();
        naive::gather_bwd<float>(dx.data(), dy.to_vector<float>().data(), index.data<int32_t>(), b);
        const Tensor dxg = gpu(dx0);
        cuda::gather_bwd(dxg.data<float>(), gpu(dy).data<float>(), ig.data<int32_t>(), b);
        REQUIRE(test::same_bits(cpu(dxg).to_vector<float>(), dx));
    }
}

TEST_CASE("cuda topk matches naive on every case and data kind, both directions", "[cuda][index]") {
    for (const test::TopkCase& c : test::topk_cases()) {
        for (test::TopkData kind : test::kTopkData) {
            for (bool largest : {true, false}) {
                INFO("x " << shape_str(c.x) << " k " << c.k << " dim " << c.dim << " " << test::topk_data_name(kind)
                          << (largest ? " largest" : " smallest"));
                const Tensor x = test::topk_data(c.x, kind, 70);
                const TopK e = test::naive_reference([&] { return topk(x, c.k, c.dim, largest); });
                const TopK a = topk(gpu(x), c.k, c.dim, largest);
                REQUIRE(a.indices.device() == Device::cuda());
                require_identical(e.values, cpu(a.values));
                require_identical(e.indices, cpu(a.indices));
                // The gradient through the values.
                const Tensor dy = test::random_tensor(e.values.shape(), 71);
                const auto f = [&](const Tensor& xl) { return topk(xl, c.k, c.dim, largest).values; };
                const auto eg = test::naive_reference([&] { return run(x, dy, f); });
                const auto ag = run(gpu(x), gpu(dy), f);
                require_identical(eg.second, cpu(ag.second));
            }
        }
    }
}

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
