// CUDA elementwise kernels against the naive CPU kernels, on the case lists the CPU tests use: unary and
// binary ops (every broadcast case and layout), their gradients, in-place ops, fills, dtype-converting
// and broadcasting copies, the 16-byte vector path and the misaligned path, special values, and the
// kernels' own contracts (unary_bwd accumulates, add_i32).
//
// Comparisons are exact (same bytes) wherever the GPU evaluates naive's expression with correctly rounded
// float operations (+, -, *, /, sqrt, selects, conversions). exp, log and pow come from CUDA's math
// library, whose results are within 2 ulps (expf, logf) and 4 ulps (powf) of the true value where glibc's
// are within 1: they are compared with rtol 1e-6 (8 float32 ulps at worst, 2^-23 = 1.2e-7 each). Results
// that hold NaN are compared by value: the GPU returns its canonical NaN from arithmetic, not the
// input's payload.
#include "support/catch.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "cuda/gpu.h"
#include "dyad/dyad.h"
#include "kernels/cuda/runtime.h"
#include "kernels/elementwise.h"
#include "support/compare.h"
#include "support/elementwise_cases.h"
#include "support/random.h"
#include "support/shapes.h"
#include "support/unwritten.h"

using namespace dyad;
using test::AllClose;
using test::cpu;
using test::gpu;
using test::kAllTypes;
using test::kLayouts;
using test::Layout;
using test::require_identical;
using test::values;

namespace {

constexpr double kLibmRtol = 1e-6;
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

// expected (naive, CPU) against actual (GPU): the same bytes, or for libm results within kLibmRtol.
void require_match(const Tensor& expected, const Tensor& actual, bool libm) {
    REQUIRE(actual.device() == Device::cuda());
    if (libm) {
        REQUIRE(actual.shape() == expected.shape());
        REQUIRE_THAT(values(actual), AllClose(values(expected)).rtol(kLibmRtol));
    } else {
        require_identical(expected, cpu(actual));
    }
}

// Values only (NaN equals NaN, infinities must match exactly), with rtol for libm results.
void require_same_values(const Tensor& expected, const Tensor& actual, double rtol = 0) {
    REQUIRE(actual.shape() == expected.shape());
    REQUIRE_THAT(values(actual), AllClose(values(expected)).rtol(rtol));
}

// A gradient that sums `terms` float products per element: rtol kReduceRtol (or the libm one, if larger)
// and an atol for results near 0 that grows with sqrt(terms) (rounding errors of a sum add up like a
// random walk) and with the size of the values (pow's gradients reach 1e7 with inputs up to about 10).
void require_sum_close(const Tensor& expected, const Tensor& actual, double terms, bool libm) {
    const std::vector<double> e = values(expected);
    double scale = 1;
    for (double v : e) scale = std::max(scale, std::abs(v));
    const double rtol = libm ? std::max(kLibmRtol, test::kReduceRtol) : test::kReduceRtol;
    const double atol = std::max(test::kReduceAtol, 1e-6 * std::sqrt(terms)) * scale;
    REQUIRE(actual.shape() == expected.shape());
    REQUIRE_THAT(values(actual), AllClose(e).rtol(rtol).atol(atol));
}

// A GPU copy of x with x's layout; checks that the layout and the values made it across.
Tensor on_gpu(const Tensor& x, Layout layout) {
    const Tensor g = test::same_layout_on(x, layout, Device::cuda());
    REQUIRE(g.device() == Device::cuda());
    REQUIRE(g.strides() == x.strides());
    return g;
}

// An in-place op on equal destinations: naive on the CPU and the GPU; the whole storage behind each
// view must come out with the same bytes (so nothing outside the view was written either).
void require_inplace_match(const Tensor& start, Layout layout, DType dtype, const std::function<void(Tensor&)>& op) {
    test::Dest expected = test::make_dest(start, layout, dtype);
    test::Dest actual = test::make_dest(start, layout, dtype, Device::cuda());
    REQUIRE(actual.view.strides() == expected.view.strides());
    test::naive_reference([&] {
        op(expected.view);
        return 0;
    });
    op(actual.view);
    require_identical(expected.storage, cpu(actual.storage));
}

}  // namespace

// ---------------------------------------------------------------------------- forward
TEST_CASE("cuda unary ops and scalar variants match naive on every shape and layout", "[cuda][elementwise]") {
    for (const Shape& shape : test::unary_shapes()) {
        for (Layout layout : kLayouts) {
            const Tensor any = test::input(shape, 7, layout), pos = test::input(shape, 7, layout, true);
            const Tensor any_g = on_gpu(any, layout), pos_g = on_gpu(pos, layout);
            for (const test::UnaryCase& op : test::unary_cases()) {
                INFO(op.name << " " << shape_str(shape) << " " << test::layout_name(layout));
                const Tensor expected = test::naive_reference([&] { return op.fn(op.positive ? pos : any); });
                const Tensor actual = op.fn(op.positive ? pos_g : any_g);
                REQUIRE(actual.is_contiguous());
                require_match(expected, actual, op.libm);
            }
        }
    }
}

TEST_CASE("cuda binary ops match naive on every broadcast case and layout pair", "[cuda][elementwise]") {
    for (const test::BinaryCase& op : test::binary_cases()) {
        for (const test::BroadcastCase& bc : test::broadcast_cases()) {
            for (const auto& [la, lb] : test::binary_layouts()) {
                INFO(op.name << " " << shape_str(bc.a) << " " << shape_str(bc.b) << " " << test::layout_name(la) << "/"
                             << test::layout_name(lb));
                const Tensor a = test::input(bc.a, 11, la, op.positive), b = test::input(bc.b, 12, lb, op.positive);
                const Tensor ag = on_gpu(a, la), bg = on_gpu(b, lb);
                // b broadcast (or neither), then a broadcast.
                require_match(test::naive_reference([&] { return op.fn(a, b); }), op.fn(ag, bg), op.libm);
                require_match(test::naive_reference([&] { return op.fn(b, a); }), op.fn(bg, ag), op.libm);
            }
        }
    }
}

// ---------------------------------------------------------------------------- backward
TEST_CASE("cuda unary backward matches naive", "[cuda][elementwise]") {
    for (const Shape& shape : test::unary_shapes()) {
        for (Layout layout : {Layout::contiguous, Layout::strided}) {
            const Tensor any = test::input(shape, 8, layout), pos = test::input(shape, 8, layout, true);
            const Tensor dy = test::input(shape, 9, Layout::contiguous);
            const Tensor any_g = on_gpu(any, layout), pos_g = on_gpu(pos, layout), dy_g = gpu(dy);
            for (const test::UnaryCase& op : test::unary_cases()) {
                INFO(op.name << " " << shape_str(shape) << " " << test::layout_name(layout));
                const Tensor expected = test::naive_reference([&] {
                    Tensor x = (op.positive ? pos : any).detach().requires_grad_();
                    op.fn(x).backward(dy);
                    return x.grad();
                });
                Tensor x = (op.positive ? pos_g : any_g).detach().requires_grad_();
                op.fn(x).backward(dy_g);
                const std::string name = op.name;
                if (name == "sigmoid" || name == "tanh") {
                    // y * (1 - y) and 1 - y * y of each side's own forward result, which differ by a few ulp
                    // of values below 1 (CUDA's expf and tanhf against glibc's): an absolute error of at most
                    // 2 * 4 * 2^-24 < 1e-6 in the derivative, times |dy|. The relative error is not bounded:
                    // 1 - y cancels where y is near 1.
                    double max_dy = 0;
                    for (double v : values(dy)) max_dy = std::max(max_dy, std::abs(v));
                    REQUIRE_THAT(values(x.grad()), AllClose(values(expected)).rtol(kLibmRtol).atol(1e-6 * max_dy));
                } else {
                    // exp's and pow's derivatives use expf and powf: libm tolerance; log's is 1 / x: exact.
                    require_match(expected, x.grad(), op.libm && name != "log");
                }
            }
        }
    }
}

TEST_CASE("cuda binary backward matches naive through a weighted sum", "[cuda][elementwise]") {
    // loss = sum(op(a, b) * w): the gradients of broadcast operands are sums over the broadcast dims
    // (reductions: the GPU adds in a tree, naive in double), so they take the reduce tolerance with an atol
    // that grows with the square root of the number of terms.
    for (const test::BinaryCase& op : test::binary_cases()) {
        for (const test::BroadcastCase& bc : test::broadcast_cases()) {
            INFO(op.name << " " << shape_str(bc.a) << " " << shape_str(bc.b));
            const Shape out = broadcast_shapes(bc.a, bc.b);
            const Tensor a = test::input(bc.a, 41, Layout::contiguous, op.positive);
            const Tensor b = test::input(bc.b, 42, Layout::strided, op.positive);
            const Tensor w = test::input(out, 43, Layout::contiguous);
            struct Grads {
                Tensor a, b;
            };
            auto run = [&](const Tensor& a0, const Tensor& b0, const Tensor& w0) {
                Tensor ar = a0.detach().requires_grad_(), br = b0.detach().requires_grad_();
                sum(mul(op.fn(ar, br), w0)).backward();
                return Grads{ar.grad(), br.grad()};
            };
            const Grads expected = test::naive_reference([&] { return run(a, b, w); });
            const Grads actual = run(gpu(a), on_gpu(b, Layout::strided), gpu(w));
            REQUIRE(actual.a.device() == Device::cuda());
            REQUIRE(actual.b.device() == Device::cuda());
            require_sum_close(expected.a, actual.a, double(shape_numel(out)) / double(shape_numel(bc.a)), op.libm);
            require_sum_close(expected.b, actual.b, double(shape_numel(out)) / double(shape_numel(bc.b)), op.libm);
        }
    }
}

TEST_CASE("cuda unary_fwd and binary_fwd kernels write every output element", "[cuda][elementwise]") {
    // The kernels directly, into contiguous outputs that start as NaN on both sides, from inputs in every
    // layout that keep each result finite: a NaN left over is an element the kernel did not write.
    cuda::use_device(0);
    auto compare = [](const std::vector<float>& expected, const Tensor& actual, bool libm) {
        const std::vector<float> a = cpu(actual).to_vector<float>();
        REQUIRE(test::count_nan(expected) == 0);
        REQUIRE(test::count_nan(a) == 0);
        if (libm)
            REQUIRE_THAT(a, AllClose(expected).rtol(kLibmRtol));
        else
            REQUIRE(test::same_bits(a, expected));
    };
    for (const Shape& shape : test::unary_shapes()) {
        const int64_t n = shape_numel(shape);
        for (Layout layout : kLayouts) {
            const Tensor any = test::input(shape, 7, layout), pos = test::input(shape, 7, layout, true);
            const Tensor any_g = test::same_layout_on(any, layout, Device::cuda()),
                         pos_g = test::same_layout_on(pos, layout, Device::cuda());
            const StridedShape s = test::kernel_shape(shape, any);
            REQUIRE(any_g.strides() == any.strides());
            for (const test::UnaryKernelCase& op : test::unary_kernel_cases()) {
                INFO(op.name << " " << shape_str(shape) << " " << test::layout_name(layout));
                std::vector<float> y = test::nan_filled<float>(n);
                naive::unary_fwd<float>(op.op, y.data(), (op.positive ? pos : any).data<float>(), s, op.p0, op.p1);
                const Tensor yg = test::nan_tensor(n, Device::cuda());
                cuda::unary_fwd(op.op, yg.data<float>(), (op.positive ? pos_g : any_g).data<float>(), s, op.p0, op.p1);
                compare(y, yg, op.libm);
            }
        }
    }
    for (size_t i = 0; i < test::binary_cases().size(); i++) {
        const test::BinaryCase& op = test::binary_cases()[i];
        for (const test::BroadcastCase& bc : test::broadcast_cases()) {
            const Shape out = broadcast_shapes(bc.a, bc.b);
            const int64_t n = shape_numel(out);
            for (const auto& [la, lb] : test::binary_layouts()) {
                INFO(op.name << " " << shape_str(bc.a) << " " << shape_str(bc.b) << " " << test::layout_name(la) << "/"
                             << test::layout_name(lb));
                const Tensor a = test::input(bc.a, 11, la, op.positive), b = test::input(bc.b, 12, lb, op.positive);
                const Tensor ag = test::same_layout_on(a, la, Device::cuda()),
                             bg = test::same_layout_on(b, lb, Device::cuda());
                const StridedShape s = test::kernel_shape(out, a, b);
                std::vector<float> y = test::nan_filled<float>(n);
                naive::binary_fwd<float>(test::binary_kernel_ops()[i], y.data(), a.data<float>(), b.data<float>(), s);
                const Tensor yg = test::nan_tensor(n, Device::cuda());
                cuda::binary_fwd(test::binary_kernel_ops()[i], yg.data<float>(), ag.data<float>(), bg.data<float>(), s);
                compare(y, yg, op.libm);
            }
        }
    }
}

TEST_CASE("cuda unary_bwd accumulates into dx like naive", "[cuda][elementwise]") {
    // The kernel directly: dx starts nonzero and must come out dx + dy * f'(x), for every op, at sizes
    // around the float4 width (the scalar tail) and a large one. Both sides get the same y, so exp's
    // derivative (y itself) is exact here; pow's calls powf: its error is relative to dy * f'(x), not to
    // the sum, so the atol scales with the largest such term.
    cuda::use_device(0);
    struct Op {
        UnaryOp op;
        bool positive, uses_y, libm;
        float p0, p1;
    };
    const Op ops[] = {
        {UnaryOp::neg, false, false, false, 0, 0},
        {UnaryOp::exp, false, true, false, 0, 0},
        {UnaryOp::log, true, false, false, 0, 0},
        {UnaryOp::sqrt, true, true, false, 0, 0},
        {UnaryOp::add_scalar, false, false, false, 1.5f, 0},
        {UnaryOp::mul_scalar, false, false, false, -3, 0},
        {UnaryOp::rsub_scalar, false, false, false, 2, 0},
        {UnaryOp::div_scalar, false, false, false, 7, 0},
        {UnaryOp::rdiv_scalar, false, false, false, 1, 0},
        {UnaryOp::pow_scalar, true, false, true, 1.7f, 0},
        {UnaryOp::clamp, false, false, false, -0.5f, 0.8f},
        {UnaryOp::abs, false, false, false, 0, 0},
        {UnaryOp::sigmoid, false, true, false, 0, 0},  // the derivative reads y only: exact
        {UnaryOp::tanh, false, true, false, 0, 0},
    };
    for (int64_t n : {int64_t(1), int64_t(3), int64_t(4), int64_t(7), int64_t(1025), int64_t(100003)}) {
        for (const Op& o : ops) {
            INFO("op " << int(o.op) << " n " << n);
            const Tensor x = test::input({n}, 51, Layout::contiguous, o.positive);
            const Tensor dy = test::input({n}, 52, Layout::contiguous), dx0 = test::input({n}, 53, Layout::contiguous);
            std::vector<float> xv = x.to_vector<float>(), dyv = dy.to_vector<float>(), dxv = dx0.to_vector<float>();
            std::vector<float> yv(xv.size());
            if (o.uses_y) {
                const StridedShape s = [&] {
                    StridedShape t;
                    t.ndim = 1, t.size[0] = n, t.stride[0][0] = t.stride[1][0] = 1;
                    return t;
                }();
                naive::unary_fwd<float>(o.op, yv.data(), xv.data(), s, o.p0, o.p1);
            }
            std::vector<float> term(xv.size(), 0.0f);  // dy * f'(x) alone
            naive::unary_bwd<float>(o.op, term.data(), dyv.data(), xv.data(), o.uses_y ? yv.data() : nullptr, n, o.p0,
                                    o.p1);
            naive::unary_bwd<float>(o.op, dxv.data(), dyv.data(), xv.data(), o.uses_y ? yv.data() : nullptr, n, o.p0,
                                    o.p1);
            const Tensor xg = gpu(x), dyg = gpu(dy), dxg = gpu(dx0);
            const Tensor yg = gpu(Tensor::from_vector(yv, {n}));
            cuda::unary_bwd(o.op, dxg.data<float>(), dyg.data<float>(), xg.data<float>(),
                            o.uses_y ? yg.data<float>() : nullptr, n, o.p0, o.p1);
            if (o.libm) {
                double largest = 0;
                for (float t : term) largest = std::max(largest, std::abs(double(t)));
                REQUIRE_THAT(values(dxg),
                             AllClose(values(Tensor::from_vector(dxv, {n}))).rtol(kLibmRtol).atol(kLibmRtol * largest));
            } else {
                require_identical(Tensor::from_vector(dxv, {n}), cpu(dxg));
            }
        }
    }
}

// ---------------------------------------------------------------------------- comparisons, where
// Comparisons and selections are exact: the same IEEE comparison or the same element chosen.
TEST_CASE("cuda comparisons match naive on every broadcast case, layout and dtype", "[cuda][elementwise]") {
    for (const test::BroadcastCase& bc : test::broadcast_cases()) {
        for (const auto& [la, lb] : test::binary_layouts()) {
            for (DType dt : kAllTypes) {
                const Tensor a = test::tie_values(bc.a, 21, la, dt), b = test::tie_values(bc.b, 22, lb, dt);
                const Tensor ag = on_gpu(a, la), bg = on_gpu(b, lb);
                for (const test::CompareCase& op : test::compare_cases()) {
                    INFO(op.name << " " << shape_str(bc.a) << " " << shape_str(bc.b) << " " << test::layout_name(la)
                                 << "/" << test::layout_name(lb) << " " << dtype_name(dt));
                    require_match(test::naive_reference([&] { return op.fn(a, b); }), op.fn(ag, bg), false);
                    require_match(test::naive_reference([&] { return op.scalar_fn(a, 1.0); }), op.scalar_fn(ag, 1.0),
                                  false);
                }
            }
        }
    }
    // Mixed dtypes promote on the GPU as on the CPU.
    const Tensor i32 = Tensor::from_vector(std::vector<int32_t>{-1, 2, 300}, {3});
    const Tensor i64 = Tensor::from_vector(std::vector<int64_t>{-1, 3, int64_t(1) << 40}, {3});
    REQUIRE(values(eq(gpu(i32), gpu(i64))) == std::vector<double>{1, 0, 0});
    REQUIRE(values(lt(gpu(i32), 2.5)) == std::vector<double>{1, 1, 0});
}

TEST_CASE("cuda where matches naive on every broadcast case and layout, forward and backward", "[cuda][elementwise]") {
    for (const test::BroadcastCase& bc : test::broadcast_cases()) {
        const Shape out = broadcast_shapes(bc.a, bc.b);
        for (const auto& [la, lb] : test::binary_layouts()) {
            INFO(shape_str(bc.a) << " " << shape_str(bc.b) << " " << test::layout_name(la) << "/"
                                 << test::layout_name(lb));
            const Tensor x = test::input(bc.a, 28, la), y = test::input(bc.b, 29, lb);
            const Tensor dy = test::input(out, 30, Layout::contiguous);
            const Tensor xg = on_gpu(x, la), yg = on_gpu(y, lb), dyg = gpu(dy);
            for (const Tensor& cond :
                 {test::mask_values({out.back()}, 31, Layout::contiguous), test::mask_values(out, 32, la)}) {
                const Tensor cg = gpu(cond);
                require_match(test::naive_reference([&] { return where(cond, x, y); }), where(cg, xg, yg), false);
                Tensor ex, ey;
                test::naive_reference([&] {
                    Tensor xl = x.detach().requires_grad_(), yl = y.detach().requires_grad_();
                    where(cond, xl, yl).backward(dy);
                    ex = xl.grad(), ey = yl.grad();
                    return 0;
                });
                Tensor xl = xg.detach().requires_grad_(), yl = yg.detach().requires_grad_();
                where(cg, xl, yl).backward(dyg);
                // Broadcast operands sum dy over their broadcast dims: a reduction (tree order on the GPU).
                require_sum_close(ex, xl.grad(), double(shape_numel(out)) / double(shape_numel(bc.a)), false);
                require_sum_close(ey, yl.grad(), double(shape_numel(out)) / double(shape_numel(bc.b)), false);
            }
            for (DType dt : kAllTypes) {
                const Tensor xi = test::tie_values(bc.a, 33, la, dt), yi = test::tie_values(bc.b, 34, lb, dt);
                const Tensor c = test::mask_values(out, 35, Layout::contiguous);
                require_match(test::naive_reference([&] { return where(c, xi, yi); }),
                              where(gpu(c), on_gpu(xi, la), on_gpu(yi, lb)), false);
            }
        }
    }
}

TEST_CASE("cuda compare_fwd and where_fwd kernels write every output element", "[cuda][elementwise]") {
    cuda::use_device(0);
    for (const test::BroadcastCase& bc : test::broadcast_cases()) {
        const Shape out = broadcast_shapes(bc.a, bc.b);
        const int64_t n = shape_numel(out);
        for (const auto& [la, lb] : test::binary_layouts()) {
            INFO(shape_str(bc.a) << " " << shape_str(bc.b) << " " << test::layout_name(la) << "/"
                                 << test::layout_name(lb));
            const Tensor a = test::tie_values(bc.a, 23, la, DType::float32);
            const Tensor b = test::tie_values(bc.b, 24, lb, DType::float32);
            const Tensor ag = on_gpu(a, la), bg = on_gpu(b, lb);
            const StridedShape s = test::kernel_shape(out, a, b);
            for (const test::CompareCase& op : test::compare_cases()) {
                std::vector<uint8_t> m(size_t(n), test::kUnwrittenByte);
                naive::compare_fwd<float>(op.op, m.data(), a.data<float>(), b.data<float>(), s);
                const Tensor mg = Tensor::full({n}, test::kUnwrittenByte, DType::uint8, Device::cuda());
                cuda::compare_fwd<float>(op.op, mg.data<uint8_t>(), ag.data<float>(), bg.data<float>(), s);
                REQUIRE(cpu(mg).to_vector<uint8_t>() == m);
            }
            const Tensor c = test::mask_values(out, 25, Layout::contiguous);
            const Tensor x = test::input(bc.a, 26, la), y = test::input(bc.b, 27, lb);
            std::vector<float> w = test::nan_filled<float>(n);
            naive::where_fwd<float>(w.data(), c.data<uint8_t>(), x.data<float>(), y.data<float>(), s);
            const Tensor wg = test::nan_tensor(n, Device::cuda());
            cuda::where_fwd<float>(wg.data<float>(), gpu(c).data<uint8_t>(), on_gpu(x, la).data<float>(),
                                   on_gpu(y, lb).data<float>(), s);
            REQUIRE(test::count_nan(w) == 0);
            REQUIRE(test::same_bits(cpu(wg).to_vector<float>(), w));
        }
    }
}

// ---------------------------------------------------------------------------- in place, fill, copy
TEST_CASE("cuda in-place add_, mul_ and fill_ match naive, views included", "[cuda][elementwise]") {
    for (const Shape& shape : test::unary_shapes()) {
        const Tensor start = test::values_0_100(shape, 5);
        const Tensor other = test::input(shape, 13, Layout::strided);
        const Tensor other_g = on_gpu(other, Layout::strided);
        for (Layout layout : kLayouts) {
            INFO(shape_str(shape) << " " << test::layout_name(layout));
            // `other` lives on the device of the tensor it is added to.
            auto other_for = [&](const Tensor& t) { return t.device() == Device::cuda() ? other_g : other; };
            require_inplace_match(start, layout, DType::float32, [](Tensor& t) { t.mul_(-0.75); });
            require_inplace_match(start, layout, DType::float32, [&](Tensor& t) { t.add_(other_for(t)); });
            require_inplace_match(start, layout, DType::float32, [&](Tensor& t) { t.add_(other_for(t), -0.5); });
            for (DType dt : kAllTypes) {
                INFO(dtype_name(dt));
                require_inplace_match(start, layout, dt, [](Tensor& t) { t.fill_(7); });
            }
        }
    }
    // add_ with a broadcast source, for every case whose b broadcasts to a.
    for (const test::BroadcastCase& bc : test::broadcast_cases()) {
        if (broadcast_shapes(bc.a, bc.b) != bc.a) continue;
        const Tensor start = test::values_0_100(bc.a, 6);
        for (Layout layout : kLayouts) {
            INFO(shape_str(bc.a) << " += " << shape_str(bc.b) << " " << test::layout_name(layout));
            const Tensor b = test::input(bc.b, 14, layout);
            const Tensor bg = on_gpu(b, layout);
            require_inplace_match(start, layout, DType::float32,
                                  [&](Tensor& t) { t.add_(t.device() == Device::cuda() ? bg : b, 2.0); });
        }
    }
}

TEST_CASE("cuda zeros and full of every dtype", "[cuda][elementwise]") {
    for (DType dt : kAllTypes) {
        for (const Shape& shape : {Shape{}, Shape{1}, Shape{7}, Shape{3, 5}, Shape{65537}, Shape{4, 32, 64, 64}}) {
            INFO(dtype_name(dt) << " " << shape_str(shape));
            require_identical(Tensor::zeros(shape, dt), cpu(Tensor::zeros(shape, dt, Device::cuda())));
            require_identical(Tensor::full(shape, 42.0, dt), cpu(Tensor::full(shape, 42.0, dt, Device::cuda())));
        }
    }
}

TEST_CASE("cuda copy_ converts between every dtype pair, with broadcasting", "[cuda][elementwise]") {
    // Values 0..99, which every dtype represents after truncation.
    for (const Shape& shape : test::copy_shapes()) {
        const Tensor start = test::values_0_100(shape, 15), v = test::values_0_100(shape, 16);
        for (Layout layout : kLayouts) {
            for (DType from : kAllTypes) {
                const Tensor src = test::make_dest(v, layout, from).view;
                const Tensor src_g = test::make_dest(v, layout, from, Device::cuda()).view;
                // The destination in another layout than the source: the copy walks both strides.
                const Layout dl = layout == Layout::contiguous ? Layout::transposed : Layout::contiguous;
                for (DType to : kAllTypes) {
                    INFO(shape_str(shape)
                         << " " << test::layout_name(layout) << " " << dtype_name(from) << " -> " << dtype_name(to));
                    require_inplace_match(start, dl, to,
                                          [&](Tensor& t) { t.copy_(t.device() == Device::cuda() ? src_g : src); });
                }
            }
        }
    }
    for (const test::BroadcastCase& bc : test::broadcast_cases()) {
        if (broadcast_shapes(bc.a, bc.b) != bc.a) continue;
        const Tensor start = test::values_0_100(bc.a, 17), src = test::values_0_100(bc.b, 18);
        const Tensor src_g = gpu(src);
        for (Layout layout : kLayouts) {
            INFO(shape_str(bc.b) << " -> " << shape_str(bc.a) << " " << test::layout_name(layout));
            for (DType to : {DType::float32, DType::uint8}) {
                require_inplace_match(start, layout, to,
                                      [&](Tensor& t) { t.copy_(t.device() == Device::cuda() ? src_g : src); });
            }
        }
    }
}

TEST_CASE("cuda contiguous(), clone() and to(dtype) match naive for every dtype pair", "[cuda][elementwise]") {
    for (const Shape& shape : test::unary_shapes()) {
        for (Layout layout : kLayouts) {
            const Tensor v = test::values_0_100(shape, 18);
            for (DType from : kAllTypes) {
                const Tensor x = test::make_dest(v, layout, from).view;
                const Tensor xg = on_gpu(x, layout);
                INFO(shape_str(shape) << " " << test::layout_name(layout) << " " << dtype_name(from));
                const Tensor c = xg.contiguous();
                REQUIRE(c.is_contiguous());
                require_identical(test::naive_reference([&] { return x.contiguous(); }), cpu(c));
                require_identical(test::naive_reference([&] { return x.clone(); }), cpu(xg.clone()));
                for (DType to : kAllTypes) {
                    INFO("to " << dtype_name(to));
                    const Tensor y = xg.to(to);
                    REQUIRE(y.device() == Device::cuda());
                    require_identical(test::naive_reference([&] { return x.to(to); }), cpu(y));
                }
            }
        }
    }
    // Float to integer truncates toward zero, negative values included.
    const Tensor f = Tensor::from_vector(std::vector<float>{-2.75f, -1.5f, -0.5f, 0.5f, 1.999f, 99.9f, 100.0f}, {7});
    require_identical(test::naive_reference([&] { return f.to(DType::int32); }), cpu(gpu(f).to(DType::int32)));
}

// ---------------------------------------------------------------------------- vector and misaligned paths
TEST_CASE("cuda 16-byte vector path, scalar tail and misaligned views match naive", "[cuda][elementwise]") {
    // A 1-D view starting at element k of a larger tensor is contiguous, but its data pointer is 16-byte
    // aligned only when k * element size is a multiple of 16: k = 0 and 4 take the vector loops (float),
    // k = 1, 2 and 3 the scalar ones. Sizes around multiples of 4 exercise the tail.
    for (int64_t n : {int64_t(1), int64_t(3), int64_t(4), int64_t(5), int64_t(1023), int64_t(1024), int64_t(1025),
                      int64_t(65537)}) {
        const Tensor a = test::input({n + 4}, 61, Layout::contiguous), b = test::input({n + 4}, 62, Layout::contiguous);
        const Tensor ag = gpu(a), bg = gpu(b);
        for (int64_t ka : {0, 1, 2, 4}) {
            for (int64_t kb : {0, 3}) {
                INFO("n " << n << " a at " << ka << " b at " << kb);
                const Tensor av = a.slice(0, ka, ka + n), bv = b.slice(0, kb, kb + n);
                const Tensor agv = ag.slice(0, ka, ka + n), bgv = bg.slice(0, kb, kb + n);
                REQUIRE(agv.is_contiguous());
                for (const test::BinaryCase& op : test::binary_cases()) {
                    if (op.positive) continue;  // pow: covered above
                    INFO(op.name);
                    require_match(test::naive_reference([&] { return op.fn(av, bv); }), op.fn(agv, bgv), false);
                }
                require_match(test::naive_reference([&] { return mul(av, 3.0); }), mul(agv, 3.0), false);
                require_match(test::naive_reference([&] { return sqrt(exp(av)); }), sqrt(exp(agv)), true);
                require_identical(av.clone(), cpu(agv.clone()));
                require_identical(test::naive_reference([&] { return av.to(DType::float64); }),
                                  cpu(agv.to(DType::float64)));
                // In place into a misaligned view: the elements around it must not change.
                Tensor whole = a.clone(), whole_g = ag.clone();
                {
                    NoGradGuard ng;
                    test::naive_reference([&] { return whole.slice(0, ka, ka + n).add_(bv); });
                    whole_g.slice(0, ka, ka + n).add_(bgv);
                }
                require_identical(whole, cpu(whole_g));
            }
        }
    }
    // uint8 copies: a 16-byte word holds 16 elements, so only offsets 0 and 16 are aligned.
    const Tensor u = test::values_0_100({1000}, 63).to(DType::uint8);
    const Tensor ug = gpu(u);
    for (int64_t k = 0; k <= 17; k++) {
        for (int64_t n : {int64_t(15), int64_t(16), int64_t(17), int64_t(500)}) {
            INFO("uint8 view at " << k << " of " << n);
            require_identical(u.slice(0, k, k + n).clone(), cpu(ug.slice(0, k, k + n).clone()));
        }
    }
}

// ---------------------------------------------------------------------------- special values
TEST_CASE("cuda special values: NaN, infinities and signed zeros", "[cuda][elementwise]") {
    const Tensor a = test::make({1, kNaN, 3, kInf, -kInf, 0, -0.0, 2}, {8}, DType::float32);
    const Tensor b = test::make({kNaN, 2, kInf, kInf, 0, -0.0, -0.0, 0}, {8}, DType::float32);
    const Tensor ag = gpu(a), bg = gpu(b);
    for (const test::BinaryCase& op : test::binary_cases()) {
        INFO(op.name);
        require_same_values(test::naive_reference([&] { return op.fn(a, b); }), op.fn(ag, bg), op.libm ? kLibmRtol : 0);
    }
    for (const test::UnaryCase& op : test::unary_cases()) {
        INFO(op.name);
        require_same_values(test::naive_reference([&] { return op.fn(a); }), op.fn(ag), op.libm ? kLibmRtol : 0);
    }
    // Broadcast: a NaN fills a whole row.
    const Tensor col = test::make({kNaN, 2}, {2, 1}, DType::float32),
                 row = test::make({1, kNaN, 3}, {3}, DType::float32);
    require_same_values(test::naive_reference([&] { return add(col, row); }), add(gpu(col), gpu(row)));
    // Without NaN the bytes match: the sign of every zero included.
    const Tensor z = test::make({0, -0.0, 1, -1, kInf, -kInf}, {6}, DType::float32);
    const Tensor zg = gpu(z);
    require_identical(test::naive_reference([&] { return neg(z); }), cpu(neg(zg)));
    require_identical(test::naive_reference([&] { return mul(z.slice(0, 0, 4), 0.0); }),
                      cpu(mul(zg.slice(0, 0, 4), 0.0)));  // (inf * 0 is NaN)
    require_identical(test::naive_reference([&] { return add(z, -0.0); }), cpu(add(zg, -0.0)));
    require_identical(test::naive_reference([&] { return div(1.0, z); }), cpu(div(1.0, zg)));
    require_identical(test::naive_reference([&] { return clamp(z, -0.5, 0.5); }), cpu(clamp(zg, -0.5, 0.5)));
    require_identical(test::naive_reference([&] { return sqrt(z.slice(0, 0, 3)); }), cpu(sqrt(zg.slice(0, 0, 3))));
    // clamp lets NaN through: compared by value.
    const Tensor c = test::make({-3, -1, 0, 0.5, 1, 2, kNaN}, {7}, DType::float32);
    require_same_values(test::naive_reference([&] { return clamp(c, -1, 1); }), clamp(gpu(c), -1, 1));
}

TEST_CASE("cuda add_i32 adds to every element", "[cuda][elementwise]") {
    cuda::use_device(0);
    for (int64_t n : {int64_t(1), int64_t(5), int64_t(100003)}) {
        std::vector<int32_t> v(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; i++) v[size_t(i)] = int32_t(i * 7 - 1000);
        const Tensor t = gpu(Tensor::from_vector(v, {n}));
        cuda::add_i32(t.data<int32_t>(), 3, n);
        cuda::add_i32(t.data<int32_t>(), -1, n);
        for (int32_t& e : v) e += 2;
        REQUIRE(cpu(t).to_vector<int32_t>() == v);
    }
}
