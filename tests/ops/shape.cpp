// The shape family's copies on every kernel set against the naive reference: the strided copy behind
// contiguous() and clone() on permuted, sliced, strided and broadcast views up to rank 6, and cat and
// stack on the shared case lists in every layout, forward and backward. Exact everywhere: each element is
// copied, and cat's backward adds one slice of dy into each (zeroed) gradient, the same float operations
// as naive. Views, known values, gradient checks and errors: tests/kernels/test_shape.cpp.
#include "support/catch.h"

#include <cstdint>
#include <utility>
#include <vector>

#include "dyad/dyad.h"
#include "support/compare.h"
#include "support/elementwise_cases.h"  // same_layout_on
#include "support/kernel_sets.h"
#include "support/random.h"
#include "support/shape_cases.h"
#include "support/tolerances.h"

using namespace dyad;
using test::Layout;

namespace {

// cat of the inputs (leaves of their layout, on their device) and the gradient of each for upstream dy.
struct CatRun {
    Tensor y;
    std::vector<Tensor> dx;
};
CatRun run_cat(const std::vector<Tensor>& in, int64_t dim, const Tensor& dy) {
    std::vector<Tensor> leaves;
    for (const Tensor& t : in) leaves.push_back(t.detach().requires_grad_());
    CatRun r;
    r.y = cat(leaves, dim);
    r.y.backward(dy);
    for (const Tensor& l : leaves) r.dx.push_back(l.grad());
    return r;
}

}  // namespace

DYAD_KERNEL_TEST("strided copy equals naive exactly on permuted, sliced, strided and broadcast views", "[shape]") {
    uint64_t seed = 100;
    for (const Shape& s : test::strided_copy_shapes()) {
        const Tensor base = test::random_tensor(s, seed++);
        const Tensor strided = test::random_tensor(s, seed++, Layout::strided);
        const Tensor bs = test::on(ks, base);
        std::vector<int64_t> rev(s.size());
        for (size_t i = 0; i < s.size(); i++) rev[i] = int64_t(s.size() - 1 - i);
        // Each view on the CPU and the same view on the set's device.
        const std::vector<std::pair<Tensor, Tensor>> views = {
            {base.permute(rev), bs.permute(rev)},
            {base.slice(0, 0, s[0], 2), bs.slice(0, 0, s[0], 2)},
            {strided, test::same_layout_on(strided, Layout::strided, ks.device)},
            {base.slice(-1, 0, 1).expand(s), bs.slice(-1, 0, 1).expand(s)},
        };
        for (const auto& view : views) {
            const Tensor &v = view.first, &vs = view.second;
            INFO(shape_str(s) << " view " << v.str() << " strides " << shape_str(v.strides()));
            REQUIRE(vs.strides() == v.strides());
            const Tensor expected = test::naive_reference([&] { return v.clone(); });
            const Tensor actual = vs.clone();
            REQUIRE(actual.device() == ks.device);
            REQUIRE(actual.is_contiguous());
            test::require_close(expected, actual, test::tol::exact(ks));
            REQUIRE(test::values(actual) == test::values(v));
        }
    }
}

DYAD_KERNEL_TEST("cat equals naive on every case and layout, forward and backward", "[shape]") {
    for (const test::CatCase& c : test::cat_cases()) {
        for (Layout layout : test::kLayouts) {
            INFO(c.shapes.size() << " inputs, first " << shape_str(c.shapes[0]) << " dim " << c.dim << " "
                                 << test::layout_name(layout));
            std::vector<Tensor> in, ins;
            for (size_t i = 0; i < c.shapes.size(); i++) {
                in.push_back(test::random_tensor(c.shapes[i], 40 + i, layout));
                ins.push_back(test::same_layout_on(in.back(), layout, ks.device));
                REQUIRE(ins.back().strides() == in.back().strides());
            }
            Shape out = c.shapes[0];
            const int64_t d = c.dim < 0 ? c.dim + int64_t(out.size()) : c.dim;
            out[size_t(d)] = 0;
            for (const Shape& s : c.shapes) out[size_t(d)] += s[size_t(d)];
            const Tensor dy = test::random_tensor(out, 50);
            const CatRun e = test::naive_reference([&] { return run_cat(in, c.dim, dy); });
            const CatRun a = run_cat(ins, c.dim, test::on(ks, dy));
            REQUIRE(a.y.device() == ks.device);
            test::require_close(e.y, a.y, test::tol::exact(ks));
            for (size_t i = 0; i < in.size(); i++) test::require_close(e.dx[i], a.dx[i], test::tol::exact(ks));
            // The result holds each input in order, and each gradient is its slice of dy.
            int64_t off = 0;
            for (size_t i = 0; i < in.size(); i++) {
                const int64_t n = c.shapes[i][size_t(d)];
                test::require_close(in[i].contiguous(), a.y.slice(d, off, off + n).contiguous(), test::tol::exact(ks));
                test::require_close(dy.slice(d, off, off + n).contiguous(), a.dx[i], test::tol::exact(ks));
                off += n;
            }
        }
    }
}

DYAD_KERNEL_TEST("stack equals naive on every case, forward and backward", "[shape]") {
    for (const test::StackCase& c : test::stack_cases()) {
        INFO("stack " << shape_str(c.shape) << " dim " << c.dim);
        const Tensor a = test::random_tensor(c.shape, 51), b = test::random_tensor(c.shape, 52, Layout::strided);
        auto f = [&](const Tensor& a0, const Tensor& b0) {
            Tensor al = a0.detach().requires_grad_(), bl = b0.detach().requires_grad_();
            Tensor y = stack({al, bl, al}, c.dim);
            sum(y * y).backward();
            return std::vector<Tensor>{y, al.grad(), bl.grad()};
        };
        const std::vector<Tensor> e = test::naive_reference([&] { return f(a, b); });
        const std::vector<Tensor> g = f(test::on(ks, a), test::same_layout_on(b, Layout::strided, ks.device));
        REQUIRE(g[0].device() == ks.device);
        test::require_close(e[0], g[0], test::tol::exact(ks));
        test::require_close(e[2], g[2], test::tol::exact(ks));
        // a appears twice: its gradient adds two slices, 2 * y each (one add of two terms: exact too).
        test::require_close(e[1], g[1], test::tol::exact(ks));
        const int64_t d = c.dim < 0 ? c.dim + int64_t(c.shape.size()) + 1 : c.dim;
        REQUIRE(g[0].size(d) == 3);
        test::require_close(b.contiguous(), g[0].select(d, 1).contiguous(), test::tol::exact(ks));
    }
}
