// Elementwise ops on every kernel set against the naive reference, on the shared case lists: unary and
// binary ops (every shape, broadcast case and layout), their gradients through autograd, in-place ops,
// fills, dtype-converting and broadcasting copies, comparisons and where, work split mid-row on large odd
// shapes, the 16-byte vector path and misaligned views, special values, and the kernels called directly:
// outputs that start as NaN (or a byte no kernel writes) must be written completely, and unary_bwd must
// add to dx. Known values in float32 and float64, gradient checks, kinks and argument errors:
// tests/kernels/test_elementwise.cpp; cuda::add_i32 (no CPU twin): tests/cuda/test_elementwise.cpp.
//
// Every comparison is exact (the same bytes) where each set evaluates naive's expression per element;
// results from libm functions and sums over broadcast dims take their rows of support/tolerances.h.
#include "support/catch.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/elementwise.h"
#include "support/compare.h"
#include "support/elementwise_cases.h"
#include "support/kernel_sets.h"
#include "support/random.h"
#include "support/shapes.h"
#include "support/tolerances.h"
#include "support/unwritten.h"

using namespace dyad;
using test::kAllTypes;
using test::KernelSet;
using test::kLayouts;
using test::Layout;
using test::Tolerance;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

// A copy of x on the set's device with x's layout (the same strides), checked to have made it across.
Tensor on_set(const KernelSet& ks, const Tensor& x, Layout layout) {
    const Tensor t = test::same_layout_on(x, layout, ks.device);
    REQUIRE(t.device() == ks.device);
    REQUIRE(t.strides() == x.strides());
    return t;
}

// The set's result, on the set's device, against naive's under t.
void require_result(const KernelSet& ks, const Tensor& expected, const Tensor& actual, Tolerance t) {
    REQUIRE(actual.device() == ks.device);
    test::require_close(expected, actual, t);
}

// An op's forward: exact, or the elementwise libm row for exp, log, pow, sigmoid and tanh.
Tolerance fwd_tol(const KernelSet& ks, bool libm) { return libm ? test::tol::ew_libm(ks) : test::tol::exact(ks); }

// The largest |v| of t, at least 1: the magnitude a gradient's rounding errors scale with.
double magnitude(const Tensor& t) {
    double m = 1;
    for (double v : test::values(t)) m = std::max(m, std::abs(v));
    return m;
}

double max_abs(const std::vector<float>& v) {
    double m = 0;
    for (float e : v) m = std::max(m, std::abs(double(e)));
    return m;
}

// The tolerance of a unary op's gradient through autograd (dy of largest magnitude max_dy): exp's and
// pow's derivatives call libm; sigmoid's and tanh's come from each set's own forward y (1 - y cancels
// where y is near 1, so the error is bounded relative to dy, not to the result); log's is 1 / x and every
// other one a float expression: exact.
Tolerance unary_grad_tol(const KernelSet& ks, const test::UnaryCase& op, double max_dy) {
    const std::string name = op.name;
    if (name == "sigmoid" || name == "tanh") return test::tol::ew_libm_grad(ks, max_dy);
    return fwd_tol(ks, op.libm && name != "log");
}

// An in-place op on equal destinations: naive on the CPU and the set on its device; the whole storage
// behind each view must come out with the same bytes (so nothing outside the view was written either).
void require_inplace(const KernelSet& ks, const Tensor& start, Layout layout, DType dtype,
                     const std::function<void(Tensor&)>& op) {
    test::Dest expected = test::make_dest(start, layout, dtype);
    test::Dest actual = test::make_dest(start, layout, dtype, ks.device);
    REQUIRE(actual.view.strides() == expected.view.strides());
    test::naive_reference([&] {
        op(expected.view);
        return 0;
    });
    op(actual.view);
    require_result(ks, expected.storage, actual.storage, test::tol::exact(ks));
}

// A float64 buffer of n NaN on the set's device (an output the kernel must write completely).
Tensor nan_buffer_f64(const KernelSet& ks, int64_t n) { return Tensor::full({n}, kNaN, DType::float64, ks.device); }

}  // namespace

// ---------------------------------------------------------------------------- forward
DYAD_KERNEL_TEST("unary ops and scalar variants equal naive on every shape and layout", "[elementwise]") {
    for (const Shape& shape : test::unary_shapes()) {
        for (Layout layout : kLayouts) {
            const Tensor any = test::input(shape, 7, layout), pos = test::input(shape, 7, layout, /*positive=*/true);
            const Tensor any_s = on_set(ks, any, layout), pos_s = on_set(ks, pos, layout);
            for (const test::UnaryCase& op : test::unary_cases()) {
                INFO(op.name << " " << shape_str(shape) << " " << test::layout_name(layout));
                const Tensor expected = test::naive_reference([&] { return op.fn(op.positive ? pos : any); });
                const Tensor actual = op.fn(op.positive ? pos_s : any_s);
                REQUIRE(actual.is_contiguous());
                require_result(ks, expected, actual, fwd_tol(ks, op.libm));
            }
        }
    }
}

DYAD_KERNEL_TEST("binary ops equal naive on every broadcast case and layout pair", "[elementwise]") {
    for (const test::BinaryCase& op : test::binary_cases()) {
        for (const test::BroadcastCase& bc : test::broadcast_cases()) {
            for (const auto& [la, lb] : test::binary_layouts()) {
                INFO(op.name << " " << shape_str(bc.a) << " " << shape_str(bc.b) << " " << test::layout_name(la) << "/"
                             << test::layout_name(lb));
                const Tensor a = test::input(bc.a, 11, la, op.positive), b = test::input(bc.b, 12, lb, op.positive);
                const Tensor as = on_set(ks, a, la), bs = on_set(ks, b, lb);
                // b broadcast (or neither), then a broadcast.
                require_result(ks, test::naive_reference([&] { return op.fn(a, b); }), op.fn(as, bs),
                               fwd_tol(ks, op.libm));
                require_result(ks, test::naive_reference([&] { return op.fn(b, a); }), op.fn(bs, as),
                               fwd_tol(ks, op.libm));
            }
        }
    }
}

DYAD_KERNEL_TEST("work split at any element: large odd shapes equal naive (omp: 1 to 3 threads)", "[elementwise]") {
    // Large enough for the omp threads, with thread chunks that start in the middle of a row and rows that
    // end in the middle of outer dims (the odometer in a strided walk must carry correctly). The thread
    // count only means something to omp; the other sets run the shapes once.
    const Shape shapes[] = {{37, 1031}, {5, 37, 211}, {3, 5, 7, 11, 17}};
    const std::vector<int> thread_counts = ks.is_cuda() ? std::vector<int>{0} : std::vector<int>{1, 2, 3};
    for (int threads : thread_counts) {
        std::optional<NumThreadsGuard> tg;
        if (threads > 0) tg.emplace(threads);
        for (const Shape& shape : shapes) {
            for (Layout layout : kLayouts) {
                INFO(threads << " threads " << shape_str(shape) << " " << test::layout_name(layout));
                const Tensor x = test::input(shape, 21, layout);
                Shape bshape(shape.size(), 1);
                bshape[1] = shape[1];  // a per-"channel" operand broadcast over everything else
                const Tensor b = test::input(bshape, 22, Layout::contiguous);
                const Tensor xs = on_set(ks, x, layout), bs = test::on(ks, b);
                const Tolerance exact = test::tol::exact(ks);
                require_result(ks, test::naive_reference([&] { return mul(x, 3.0); }), mul(xs, 3.0), exact);
                require_result(ks, test::naive_reference([&] { return add(x, b); }), add(xs, bs), exact);
                require_result(ks, test::naive_reference([&] { return sub(b, x); }), sub(bs, xs), exact);
                require_result(ks, test::naive_reference([&] { return x.contiguous(); }), xs.contiguous(), exact);
                require_inplace(ks, x, layout, DType::float32, [](Tensor& t) { t.fill_(2.5); });
            }
        }
    }
}

// ---------------------------------------------------------------------------- backward
DYAD_KERNEL_TEST("unary backward equals naive on every shape, contiguous and strided", "[elementwise]") {
    for (const Shape& shape : test::unary_shapes()) {
        for (Layout layout : {Layout::contiguous, Layout::strided}) {
            const Tensor any = test::input(shape, 8, layout), pos = test::input(shape, 8, layout, true);
            const Tensor dy = test::input(shape, 9, Layout::contiguous);
            const Tensor any_s = on_set(ks, any, layout), pos_s = on_set(ks, pos, layout), dy_s = test::on(ks, dy);
            double max_dy = 0;
            for (double v : test::values(dy)) max_dy = std::max(max_dy, std::abs(v));
            for (const test::UnaryCase& op : test::unary_cases()) {
                INFO(op.name << " " << shape_str(shape) << " " << test::layout_name(layout));
                const Tensor expected = test::naive_reference([&] {
                    Tensor x = (op.positive ? pos : any).detach().requires_grad_();
                    op.fn(x).backward(dy);
                    return x.grad();
                });
                Tensor x = (op.positive ? pos_s : any_s).detach().requires_grad_();
                op.fn(x).backward(dy_s);
                require_result(ks, expected, x.grad(), unary_grad_tol(ks, op, max_dy));
            }
        }
    }
}

DYAD_KERNEL_TEST("binary backward equals naive through a weighted sum on every broadcast case", "[elementwise]") {
    // loss = sum(op(a, b) * w): the gradient of a broadcast operand is a sum over its broadcast dims (naive
    // adds in double, the sets in float), so it takes the row for such sums, scaled by the size of the
    // gradient (pow's reach 1e6 and more with bases and exponents up to about 8).
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
            const Grads actual = run(test::on(ks, a), on_set(ks, b, Layout::strided), test::on(ks, w));
            const double terms_a = double(shape_numel(out)) / double(shape_numel(bc.a));
            const double terms_b = double(shape_numel(out)) / double(shape_numel(bc.b));
            require_result(ks, expected.a, actual.a, test::tol::ew_grad_sum(ks, terms_a, magnitude(expected.a)));
            require_result(ks, expected.b, actual.b, test::tol::ew_grad_sum(ks, terms_b, magnitude(expected.b)));
        }
    }
}

// ---------------------------------------------------------------------------- in place, fill, copy
DYAD_KERNEL_TEST("in-place add_, mul_ and fill_ equal naive, views included", "[elementwise]") {
    for (const Shape& shape : test::unary_shapes()) {
        const Tensor start = test::values_0_100(shape, 5);
        const Tensor other = test::input(shape, 13, Layout::strided);
        const Tensor other_s = on_set(ks, other, Layout::strided);
        // `other` lives on the device of the tensor it is added to.
        auto other_for = [&](const Tensor& t) { return t.device() == Device::cpu() ? other : other_s; };
        for (Layout layout : kLayouts) {
            INFO(shape_str(shape) << " " << test::layout_name(layout));
            require_inplace(ks, start, layout, DType::float32, [](Tensor& t) { t.mul_(-0.75); });
            require_inplace(ks, start, layout, DType::float32, [&](Tensor& t) { t.add_(other_for(t)); });
            require_inplace(ks, start, layout, DType::float32, [&](Tensor& t) { t.add_(other_for(t), -0.5); });
            for (DType dt : kAllTypes) {
                INFO(dtype_name(dt));
                require_inplace(ks, start, layout, dt, [](Tensor& t) { t.fill_(7); });
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
            const Tensor bs = on_set(ks, b, layout);
            require_inplace(ks, start, layout, DType::float32,
                            [&](Tensor& t) { t.add_(t.device() == Device::cpu() ? b : bs, 2.0); });
        }
    }
}

DYAD_KERNEL_TEST("zeros and full of every dtype equal naive", "[elementwise]") {
    for (DType dt : kAllTypes) {
        for (const Shape& shape : {Shape{}, Shape{1}, Shape{7}, Shape{3, 5}, Shape{65537}, Shape{4, 32, 64, 64}}) {
            INFO(dtype_name(dt) << " " << shape_str(shape));
            require_result(ks, test::naive_reference([&] { return Tensor::zeros(shape, dt); }),
                           Tensor::zeros(shape, dt, ks.device), test::tol::exact(ks));
            require_result(ks, test::naive_reference([&] { return Tensor::full(shape, 42.0, dt); }),
                           Tensor::full(shape, 42.0, dt, ks.device), test::tol::exact(ks));
        }
    }
}

DYAD_KERNEL_TEST("copy_ converts between every dtype pair, with broadcasting", "[elementwise]") {
    // Values 0..99, which every dtype represents after truncation.
    for (const Shape& shape : test::copy_shapes()) {
        const Tensor start = test::values_0_100(shape, 15), v = test::values_0_100(shape, 16);
        for (Layout layout : kLayouts) {
            for (DType from : kAllTypes) {
                const Tensor src = test::make_dest(v, layout, from).view;
                const Tensor src_s = test::make_dest(v, layout, from, ks.device).view;
                // The destination in another layout than the source: the copy walks both strides.
                const Layout dl = layout == Layout::contiguous ? Layout::transposed : Layout::contiguous;
                for (DType to : kAllTypes) {
                    INFO(shape_str(shape)
                         << " " << test::layout_name(layout) << " " << dtype_name(from) << " -> " << dtype_name(to));
                    require_inplace(ks, start, dl, to,
                                    [&](Tensor& t) { t.copy_(t.device() == Device::cpu() ? src : src_s); });
                }
            }
        }
    }
    for (const test::BroadcastCase& bc : test::broadcast_cases()) {
        if (broadcast_shapes(bc.a, bc.b) != bc.a) continue;
        const Tensor start = test::values_0_100(bc.a, 17), src = test::values_0_100(bc.b, 18);
        const Tensor src_s = test::on(ks, src);
        for (Layout layout : kLayouts) {
            INFO(shape_str(bc.b) << " -> " << shape_str(bc.a) << " " << test::layout_name(layout));
            for (DType to : {DType::float32, DType::uint8}) {
                require_inplace(ks, start, layout, to,
                                [&](Tensor& t) { t.copy_(t.device() == Device::cpu() ? src : src_s); });
            }
        }
    }
}

DYAD_KERNEL_TEST("contiguous(), clone() and to(dtype) equal naive for every layout and dtype pair", "[elementwise]") {
    const Tolerance exact = test::tol::exact(ks);
    for (const Shape& shape : test::unary_shapes()) {
        for (Layout layout : kLayouts) {
            // Values 0..99 in every dtype, converted to every dtype.
            const Tensor v = test::values_0_100(shape, 18);
            for (DType from : kAllTypes) {
                const Tensor x = test::make_dest(v, layout, from).view;
                const Tensor xs = on_set(ks, x, layout);
                INFO(shape_str(shape) << " " << test::layout_name(layout) << " " << dtype_name(from));
                const Tensor c = xs.contiguous();
                REQUIRE(c.is_contiguous());
                require_result(ks, test::naive_reference([&] { return x.contiguous(); }), c, exact);
                require_result(ks, test::naive_reference([&] { return x.clone(); }), xs.clone(), exact);
                for (DType to : kAllTypes) {
                    INFO("to " << dtype_name(to));
                    require_result(ks, test::naive_reference([&] { return x.to(to); }), xs.to(to), exact);
                }
            }
            // Normal values of either sign: to int32 truncates fractions toward zero.
            const Tensor n = test::input(shape, 17, layout);
            const Tensor ns = on_set(ks, n, layout);
            INFO(shape_str(shape) << " " << test::layout_name(layout) << " normal float32");
            require_result(ks, test::naive_reference([&] { return n.contiguous(); }), ns.contiguous(), exact);
            require_result(ks, test::naive_reference([&] { return n.clone(); }), ns.clone(), exact);
            for (DType dt : {DType::float64, DType::int32})
                require_result(ks, test::naive_reference([&] { return n.to(dt); }), ns.to(dt), exact);
        }
    }
    // Float to integer truncates toward zero, negative values included.
    const Tensor f = Tensor::from_vector(std::vector<float>{-2.75f, -1.5f, -0.5f, 0.5f, 1.999f, 99.9f, 100.0f}, {7});
    require_result(ks, test::naive_reference([&] { return f.to(DType::int32); }), test::on(ks, f).to(DType::int32),
                   exact);
}

// ---------------------------------------------------------------------------- kernels directly
DYAD_KERNEL_TEST("unary_fwd, unary_bwd, copy and fill kernels write every output element like naive", "[elementwise]") {
    // The kernels directly, into contiguous outputs that start as NaN, from inputs in every layout that
    // keep each result finite: a NaN left over is an element the kernel did not write. unary_bwd
    // accumulates: dx starts with values and must gain the gradient computed into zeros; both sides get
    // naive's y, so only pow's derivative (powf) may differ from naive's.
    for (const Shape& shape : test::unary_shapes()) {
        const int64_t n = shape_numel(shape);
        const std::vector<float> dy = test::input(shape, 10, Layout::contiguous).to_vector<float>();
        const std::vector<float> dx0 = test::input(shape, 11, Layout::contiguous).to_vector<float>();
        const Tensor dys = test::buffer(ks, dy);
        for (Layout layout : kLayouts) {
            const Tensor any = test::input(shape, 7, layout), pos = test::input(shape, 7, layout, /*positive=*/true);
            const Tensor any_s = on_set(ks, any, layout), pos_s = on_set(ks, pos, layout);
            const StridedShape s = test::kernel_shape(shape, any);
            for (const test::UnaryKernelCase& op : test::unary_kernel_cases()) {
                INFO(op.name << " " << shape_str(shape) << " " << test::layout_name(layout));
                const float* x = (op.positive ? pos : any).data<float>();
                const Tensor& xs = op.positive ? pos_s : any_s;
                std::vector<float> y = test::nan_filled<float>(n);
                naive::unary_fwd<float>(op.op, y.data(), x, s, op.p0, op.p1);
                REQUIRE(test::count_nan(y) == 0);
                const Tensor ys = test::nan_buffer(ks, n);
                DYAD_KCALL(ks, unary_fwd, op.op, test::ptr(ys), test::ptr(xs), s, op.p0, op.p1);
                const std::vector<float> y_set = test::host(ys);
                REQUIRE(test::count_nan(y_set) == 0);
                test::require_close(y, y_set, fwd_tol(ks, op.libm));
                if (layout != Layout::contiguous) continue;  // the backward kernels are contiguous only
                std::vector<float> dx = dx0, fresh(size_t(n), 0.0f);
                naive::unary_bwd<float>(op.op, dx.data(), dy.data(), x, y.data(), n, op.p0, op.p1);
                naive::unary_bwd<float>(op.op, fresh.data(), dy.data(), x, y.data(), n, op.p0, op.p1);
                REQUIRE(test::added_to(dx, dx0, fresh));
                const Tensor y_ref = test::buffer(ks, y), dxs = test::buffer(ks, dx0);
                const Tensor fresh_s = test::buffer(ks, std::vector<float>(size_t(n), 0.0f));
                DYAD_KCALL(ks, unary_bwd, op.op, test::ptr(dxs), test::ptr(dys), test::ptr(xs), test::ptr(y_ref), n,
                           op.p0, op.p1);
                DYAD_KCALL(ks, unary_bwd, op.op, test::ptr(fresh_s), test::ptr(dys), test::ptr(xs), test::ptr(y_ref), n,
                           op.p0, op.p1);
                const std::vector<float> dx_set = test::host(dxs);
                const Tolerance t = op.bwd_libm ? test::tol::ew_libm_grad(ks, max_abs(fresh)) : test::tol::exact(ks);
                test::require_close(dx, dx_set, t);
                REQUIRE(test::added_to(dx_set, dx0, test::host(fresh_s)));
            }
            // Copies (converting to float64 too) and fills.
            std::vector<float> c = test::nan_filled<float>(n);
            std::vector<double> cd = test::nan_filled<double>(n);
            naive::copy<float, float>(c.data(), any.data<float>(), s);
            naive::copy<double, float>(cd.data(), any.data<float>(), s);
            REQUIRE(test::count_nan(c) + test::count_nan(cd) == 0);
            REQUIRE(c == any.contiguous().to_vector<float>());
            const Tensor cs = test::nan_buffer(ks, n), cds = nan_buffer_f64(ks, n);
            DYAD_KCALL(ks, copy, test::ptr(cs), test::ptr(any_s), s);
            DYAD_KCALL(ks, copy, test::ptr<double>(cds), test::ptr(any_s), s);
            test::require_close(c, test::host(cs), test::tol::exact(ks));
            REQUIRE(cds.to(Device::cpu()).to_vector<double>() == cd);
            std::vector<float> f = test::nan_filled<float>(n);
            naive::fill<float>(f.data(), 2.5f, n);
            REQUIRE(f == std::vector<float>(size_t(n), 2.5f));
            const Tensor fs = test::nan_buffer(ks, n);
            DYAD_KCALL(ks, fill, test::ptr(fs), 2.5f, n);
            REQUIRE(test::host(fs) == f);
        }
    }
}

DYAD_KERNEL_TEST("binary_fwd writes every output element like naive and like the frontend", "[elementwise]") {
    for (size_t i = 0; i < test::binary_cases().size(); i++) {
        const test::BinaryCase& op = test::binary_cases()[i];
        const BinaryOp kop = test::binary_kernel_ops()[i];
        for (const test::BroadcastCase& bc : test::broadcast_cases()) {
            const Shape out = broadcast_shapes(bc.a, bc.b);
            const int64_t n = shape_numel(out);
            for (const auto& [la, lb] : test::binary_layouts()) {
                INFO(op.name << " " << shape_str(bc.a) << " " << shape_str(bc.b) << " " << test::layout_name(la) << "/"
                             << test::layout_name(lb));
                const Tensor a = test::input(bc.a, 11, la, op.positive), b = test::input(bc.b, 12, lb, op.positive);
                const Tensor as = on_set(ks, a, la), bs = on_set(ks, b, lb);
                const StridedShape s = test::kernel_shape(out, a, b);
                std::vector<float> y = test::nan_filled<float>(n);
                naive::binary_fwd<float>(kop, y.data(), a.data<float>(), b.data<float>(), s);
                REQUIRE(test::count_nan(y) == 0);
                const Tensor ys = test::nan_buffer(ks, n);
                DYAD_KCALL(ks, binary_fwd, kop, test::ptr(ys), test::ptr(as), test::ptr(bs), s);
                const std::vector<float> y_set = test::host(ys);
                REQUIRE(test::count_nan(y_set) == 0);
                test::require_close(y, y_set, fwd_tol(ks, op.libm));
                // The frontend's result on the same set: the same kernel, the same bytes.
                test::require_close(y_set, test::host(op.fn(as, bs).contiguous().reshape({n})), test::tol::exact(ks));
            }
        }
    }
}

DYAD_KERNEL_TEST("unary_bwd accumulates into dx like naive at sizes around the vector width", "[elementwise]") {
    // dx starts nonzero and must come out dx + dy * f'(x), for every op, at sizes around the 4-float
    // vectors (the scalar tail) and a large one. Both sides get naive's y, so exp's derivative (y itself)
    // is exact; y is null for the ops whose derivative does not read it. pow's calls powf: its error is
    // relative to dy * f'(x), not to the sum, so the tolerance scales with the largest such term.
    for (int64_t n : {int64_t(1), int64_t(3), int64_t(4), int64_t(7), int64_t(1025), int64_t(100003)}) {
        for (const test::UnaryKernelCase& op : test::unary_kernel_cases()) {
            INFO(op.name << " n " << n);
            const std::vector<float> x = test::input({n}, 51, Layout::contiguous, op.positive).to_vector<float>();
            const std::vector<float> dy = test::input({n}, 52, Layout::contiguous).to_vector<float>();
            const std::vector<float> dx0 = test::input({n}, 53, Layout::contiguous).to_vector<float>();
            std::vector<float> y(x.size());
            if (op.uses_y)
                naive::unary_fwd<float>(op.op, y.data(), x.data(), test::kernel_shape({n}, Tensor::zeros({n})), op.p0,
                                        op.p1);
            const float* y_naive = op.uses_y ? y.data() : nullptr;
            std::vector<float> term(x.size(), 0.0f), dx = dx0;  // term: dy * f'(x) alone
            naive::unary_bwd<float>(op.op, term.data(), dy.data(), x.data(), y_naive, n, op.p0, op.p1);
            naive::unary_bwd<float>(op.op, dx.data(), dy.data(), x.data(), y_naive, n, op.p0, op.p1);
            const Tensor xs = test::buffer(ks, x), dys = test::buffer(ks, dy), dxs = test::buffer(ks, dx0);
            const Tensor ys = op.uses_y ? test::buffer(ks, y) : Tensor();
            DYAD_KCALL(ks, unary_bwd, op.op, test::ptr(dxs), test::ptr(dys), test::ptr(xs), test::ptr(ys), n, op.p0,
                       op.p1);
            const Tolerance t = op.bwd_libm ? test::tol::ew_libm_grad(ks, max_abs(term)) : test::tol::exact(ks);
            test::require_close(dx, test::host(dxs), t);
        }
    }
}

// ---------------------------------------------------------------------------- comparisons, where
// Comparisons and selections are exact: the same IEEE comparison or the same element chosen.
DYAD_KERNEL_TEST("comparisons equal naive on every broadcast case, layout and dtype", "[elementwise]") {
    for (const test::BroadcastCase& bc : test::broadcast_cases()) {
        for (const auto& [la, lb] : test::binary_layouts()) {
            for (DType dt : kAllTypes) {
                const Tensor a = test::tie_values(bc.a, 21, la, dt), b = test::tie_values(bc.b, 22, lb, dt);
                const Tensor as = on_set(ks, a, la), bs = on_set(ks, b, lb);
                for (const test::CompareCase& op : test::compare_cases()) {
                    INFO(op.name << " " << shape_str(bc.a) << " " << shape_str(bc.b) << " " << test::layout_name(la)
                                 << "/" << test::layout_name(lb) << " " << dtype_name(dt));
                    require_result(ks, test::naive_reference([&] { return op.fn(a, b); }), op.fn(as, bs),
                                   test::tol::exact(ks));
                    require_result(ks, test::naive_reference([&] { return op.scalar_fn(a, 1.0); }),
                                   op.scalar_fn(as, 1.0), test::tol::exact(ks));
                }
            }
        }
    }
    // Mixed dtypes promote on every set as on the CPU (known values: tests/kernels/test_elementwise.cpp).
    const Tensor i32 = Tensor::from_vector(std::vector<int32_t>{-1, 2, 300}, {3});
    const Tensor i64 = Tensor::from_vector(std::vector<int64_t>{-1, 3, int64_t(1) << 40}, {3});
    REQUIRE(test::values(eq(test::on(ks, i32), test::on(ks, i64))) == std::vector<double>{1, 0, 0});
    REQUIRE(test::values(lt(test::on(ks, i32), 2.5)) == std::vector<double>{1, 1, 0});
}

DYAD_KERNEL_TEST("compare_fwd and where_fwd write every output element like naive and like the frontend",
                 "[elementwise]") {
    // Outputs start as a byte no kernel writes (masks) or NaN (where's float output); every element must
    // be written, with naive's value, matching the frontend on the same set.
    for (const test::BroadcastCase& bc : test::broadcast_cases()) {
        const Shape out = broadcast_shapes(bc.a, bc.b);
        const int64_t n = shape_numel(out);
        for (const auto& [la, lb] : test::binary_layouts()) {
            INFO(shape_str(bc.a) << " " << shape_str(bc.b) << " " << test::layout_name(la) << "/"
                                 << test::layout_name(lb));
            const Tensor a = test::tie_values(bc.a, 23, la, DType::float32);
            const Tensor b = test::tie_values(bc.b, 24, lb, DType::float32);
            const Tensor as = on_set(ks, a, la), bs = on_set(ks, b, lb);
            const StridedShape s = test::kernel_shape(out, a, b);
            for (const test::CompareCase& op : test::compare_cases()) {
                INFO(op.name);
                std::vector<uint8_t> m(size_t(n), test::kUnwrittenByte);
                naive::compare_fwd<float>(op.op, m.data(), a.data<float>(), b.data<float>(), s);
                REQUIRE(test::count_not_01(m) == 0);
                const Tensor ms = test::buffer_u8(ks, std::vector<uint8_t>(size_t(n), test::kUnwrittenByte));
                DYAD_KCALL(ks, compare_fwd, op.op, test::ptr<uint8_t>(ms), test::ptr(as), test::ptr(bs), s);
                const std::vector<uint8_t> m_set = test::host_u8(ms);
                REQUIRE(m_set == m);
                REQUIRE(m_set == op.fn(as, bs).contiguous().to(Device::cpu()).to_vector<uint8_t>());
            }
            const Tensor c = test::mask_values(out, 25, Layout::contiguous);
            const Tensor x = test::input(bc.a, 26, la), y = test::input(bc.b, 27, lb);
            const Tensor cs = test::on(ks, c), xs = on_set(ks, x, la), ys = on_set(ks, y, lb);
            std::vector<float> w = test::nan_filled<float>(n);
            naive::where_fwd<float>(w.data(), c.data<uint8_t>(), x.data<float>(), y.data<float>(), s);
            REQUIRE(test::count_nan(w) == 0);
            const Tensor ws = test::nan_buffer(ks, n);
            DYAD_KCALL(ks, where_fwd, test::ptr(ws), test::ptr<uint8_t>(cs), test::ptr(xs), test::ptr(ys), s);
            const std::vector<float> w_set = test::host(ws);
            test::require_close(w, w_set, test::tol::exact(ks));
            test::require_close(w_set, test::host(where(cs, xs, ys).contiguous().reshape({n})), test::tol::exact(ks));
        }
    }
}

DYAD_KERNEL_TEST("where equals naive on every broadcast case and layout, forward and backward", "[elementwise]") {
    for (const test::BroadcastCase& bc : test::broadcast_cases()) {
        const Shape out = broadcast_shapes(bc.a, bc.b);
        for (const auto& [la, lb] : test::binary_layouts()) {
            INFO(shape_str(bc.a) << " " << shape_str(bc.b) << " " << test::layout_name(la) << "/"
                                 << test::layout_name(lb));
            const Tensor x = test::input(bc.a, 28, la), y = test::input(bc.b, 29, lb);
            const Tensor dy = test::input(out, 30, Layout::contiguous);
            const Tensor xs = on_set(ks, x, la), ys = on_set(ks, y, lb), dys = test::on(ks, dy);
            const Tensor c = test::mask_values({out.back()}, 31, Layout::contiguous);
            const Tensor cfull = test::mask_values(out, 32, la);
            // cond broadcast too (one row of the output's last dim), of the full shape in a's layout, and
            // that one packed.
            std::vector<std::pair<Tensor, Layout>> conds;  // pushed one by one: GCC 12's array-bounds check
            conds.emplace_back(c, Layout::contiguous);     // misreads an initializer list of these pairs
            conds.emplace_back(cfull, la);
            if (la != Layout::contiguous) conds.push_back({cfull.contiguous(), Layout::contiguous});
            for (const auto& cond_layout : conds) {
                const Tensor& cond = cond_layout.first;
                INFO("cond " << shape_str(cond.shape()) << " " << test::layout_name(cond_layout.second));
                const Tensor cond_s = on_set(ks, cond, cond_layout.second);
                require_result(ks, test::naive_reference([&] { return where(cond, x, y); }), where(cond_s, xs, ys),
                               test::tol::exact(ks));
                Tensor ex, ey;
                test::naive_reference([&] {
                    Tensor xl = x.detach().requires_grad_(), yl = y.detach().requires_grad_();
                    where(cond, xl, yl).backward(dy);
                    ex = xl.grad(), ey = yl.grad();
                    return 0;
                });
                Tensor xl = xs.detach().requires_grad_(), yl = ys.detach().requires_grad_();
                where(cond_s, xl, yl).backward(dys);
                // An operand of the output's shape gets where's selection of dy; a broadcast one gets it
                // summed over the broadcast dims.
                const double terms_x = double(shape_numel(out)) / double(shape_numel(bc.a));
                const double terms_y = double(shape_numel(out)) / double(shape_numel(bc.b));
                require_result(ks, ex, xl.grad(), test::tol::where_grad(ks, terms_x, magnitude(ex)));
                require_result(ks, ey, yl.grad(), test::tol::where_grad(ks, terms_y, magnitude(ey)));
            }
            // Every dtype, with cond of the full shape in a's layout and contiguous.
            const Tensor c35 = test::mask_values(out, 35, Layout::contiguous);
            for (DType dt : kAllTypes) {
                INFO(dtype_name(dt));
                const Tensor xi = test::tie_values(bc.a, 33, la, dt), yi = test::tie_values(bc.b, 34, lb, dt);
                const Tensor xis = on_set(ks, xi, la), yis = on_set(ks, yi, lb);
                require_result(ks, test::naive_reference([&] { return where(cfull, xi, yi); }),
                               where(on_set(ks, cfull, la), xis, yis), test::tol::exact(ks));
                require_result(ks, test::naive_reference([&] { return where(c35, xi, yi); }),
                               where(test::on(ks, c35), xis, yis), test::tol::exact(ks));
            }
        }
    }
}

// ---------------------------------------------------------------------------- vector and misaligned paths
DYAD_KERNEL_TEST("16-byte vector path, scalar tail and misaligned views equal naive", "[elementwise]") {
    // A 1-D view starting at element k of a larger tensor is contiguous, but its data pointer is 16-byte
    // aligned only when k * element size is a multiple of 16: k = 0 and 4 take the vector loops (float),
    // k = 1, 2 and 3 the scalar ones. Sizes around multiples of 4 exercise the tail.
    const Tolerance exact = test::tol::exact(ks);
    for (int64_t n : {int64_t(1), int64_t(3), int64_t(4), int64_t(5), int64_t(1023), int64_t(1024), int64_t(1025),
                      int64_t(65537)}) {
        const Tensor a = test::input({n + 4}, 61, Layout::contiguous), b = test::input({n + 4}, 62, Layout::contiguous);
        const Tensor as = test::buffer(ks, a.to_vector<float>()), bs = test::buffer(ks, b.to_vector<float>());
        for (int64_t ka : {0, 1, 2, 4}) {
            for (int64_t kb : {0, 3}) {
                INFO("n " << n << " a at " << ka << " b at " << kb);
                const Tensor av = a.slice(0, ka, ka + n), bv = b.slice(0, kb, kb + n);
                const Tensor asv = as.slice(0, ka, ka + n), bsv = bs.slice(0, kb, kb + n);
                REQUIRE(asv.is_contiguous());
                for (const test::BinaryCase& op : test::binary_cases()) {
                    if (op.positive) continue;  // pow: covered above
                    INFO(op.name);
                    require_result(ks, test::naive_reference([&] { return op.fn(av, bv); }), op.fn(asv, bsv), exact);
                }
                require_result(ks, test::naive_reference([&] { return mul(av, 3.0); }), mul(asv, 3.0), exact);
                require_result(ks, test::naive_reference([&] { return sqrt(exp(av)); }), sqrt(exp(asv)),
                               test::tol::ew_libm(ks));
                require_result(ks, av.clone(), asv.clone(), exact);
                require_result(ks, test::naive_reference([&] { return av.to(DType::float64); }), asv.to(DType::float64),
                               exact);
                // In place into a misaligned view: the elements around it must not change.
                Tensor whole = a.clone(), whole_s = as.clone();
                {
                    NoGradGuard ng;
                    test::naive_reference([&] { return whole.slice(0, ka, ka + n).add_(bv); });
                    whole_s.slice(0, ka, ka + n).add_(bsv);
                }
                require_result(ks, whole, whole_s, exact);
            }
        }
    }
    // uint8 copies: a 16-byte word holds 16 elements, so only offsets 0 and 16 are aligned.
    const Tensor u = test::values_0_100({1000}, 63).to(DType::uint8);
    const Tensor us = u.clone().to(ks.device);
    for (int64_t k = 0; k <= 17; k++) {
        for (int64_t n : {int64_t(15), int64_t(16), int64_t(17), int64_t(500)}) {
            INFO("uint8 view at " << k << " of " << n);
            require_result(ks, u.slice(0, k, k + n).clone(), us.slice(0, k, k + n).clone(), exact);
        }
    }
}

// ---------------------------------------------------------------------------- special values
DYAD_KERNEL_TEST("special values: NaN, infinities and signed zeros equal naive", "[elementwise]") {
    // Results that hold NaN take the arith row (a GPU's arithmetic returns its canonical NaN, not an
    // operand's payload); libm ops their own row.
    const Tensor a = test::make({1, kNaN, 3, kInf, -kInf, 0, -0.0, 2}, {8}, DType::float32);
    const Tensor b = test::make({kNaN, 2, kInf, kInf, 0, -0.0, -0.0, 0}, {8}, DType::float32);
    const Tensor as = test::on(ks, a), bs = test::on(ks, b);
    for (const test::BinaryCase& op : test::binary_cases()) {
        INFO(op.name);
        require_result(ks, test::naive_reference([&] { return op.fn(a, b); }), op.fn(as, bs),
                       op.libm ? test::tol::ew_libm(ks) : test::tol::arith(ks));
    }
    for (const test::UnaryCase& op : test::unary_cases()) {
        INFO(op.name);
        require_result(ks, test::naive_reference([&] { return op.fn(a); }), op.fn(as),
                       op.libm ? test::tol::ew_libm(ks) : test::tol::arith(ks));
    }
    // Broadcast: a NaN fills a whole row.
    const Tensor col = test::make({kNaN, 2}, {2, 1}, DType::float32),
                 row = test::make({1, kNaN, 3}, {3}, DType::float32);
    require_result(ks, test::naive_reference([&] { return add(col, row); }), add(test::on(ks, col), test::on(ks, row)),
                   test::tol::arith(ks));
    // Without NaN the bytes match: the sign of every zero included.
    const Tolerance exact = test::tol::exact(ks);
    const Tensor z = test::make({0, -0.0, 1, -1, kInf, -kInf}, {6}, DType::float32);
    const Tensor zs = test::on(ks, z);
    require_result(ks, test::naive_reference([&] { return neg(z); }), neg(zs), exact);
    require_result(ks, test::naive_reference([&] { return mul(z.slice(0, 0, 4), 0.0); }), mul(zs.slice(0, 0, 4), 0.0),
                   exact);  // (inf * 0 is NaN)
    require_result(ks, test::naive_reference([&] { return add(z, -0.0); }), add(zs, -0.0), exact);
    require_result(ks, test::naive_reference([&] { return div(1.0, z); }), div(1.0, zs), exact);
    require_result(ks, test::naive_reference([&] { return clamp(z, -0.5, 0.5); }), clamp(zs, -0.5, 0.5), exact);
    require_result(ks, test::naive_reference([&] { return sqrt(z.slice(0, 0, 3)); }), sqrt(zs.slice(0, 0, 3)), exact);
    // clamp lets NaN through.
    const Tensor c = test::make({-3, -1, 0, 0.5, 1, 2, kNaN}, {7}, DType::float32);
    require_result(ks, test::naive_reference([&] { return clamp(c, -1, 1); }), clamp(test::on(ks, c), -1, 1),
                   test::tol::arith(ks));
}
