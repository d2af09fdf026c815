// CUDA cat and stack against the naive CPU kernels on the shared case lists, forward and backward, in every
// layout. Exact: cat copies each input into its slice and its backward adds one slice of dy into each
// (zeroed) gradient, the same float operations on both sides.
#include "support/catch.h"

#include <vector>

#include "cuda/gpu.h"
#include "dyad/dyad.h"
#include "support/compare.h"
#include "support/elementwise_cases.h"  // same_layout_on
#include "support/random.h"
#include "support/shape_cases.h"

using namespace dyad;
using test::cpu;
using test::gpu;
using test::Layout;
using test::require_identical;

namespace {

// cat of the inputs (moved to `device` in their layout) and the gradient of each for upstream dy.
struct CatRun {
    Tensor y;
    std::vector<Tensor> dx;
};
CatRun run_cat(const std::vector<Tensor>& in, Layout layout, int64_t dim, const Tensor& dy, Device device) {
    std::vector<Tensor> leaves;
    for (const Tensor& t : in) leaves.push_back(test::same_layout_on(t, layout, device).detach().requires_grad_());
    CatRun r;
    r.y = cat(leaves, dim);
    r.y.backward(dy.to(device));
    for (const Tensor& l : leaves) r.dx.push_back(l.grad());
    return r;
}

}  // namespace

TEST_CASE("cuda cat matches naive on every case and layout, forward and backward", "[cuda][shape]") {
    for (const test::CatCase& c : test::cat_cases()) {
        for (Layout layout : test::kLayouts) {
            INFO(c.shapes.size() << " inputs, first " << shape_str(c.shapes[0]) << " dim " << c.dim << " "
                                 << test::layout_name(layout));
            std::vector<Tensor> in;
            for (size_t i = 0; i < c.shapes.size(); i++) in.push_back(test::random_tensor(c.shapes[i], 40 + i, layout));
            Shape out = c.shapes[0];
            const int64_t d = c.dim < 0 ? c.dim + int64_t(out.size()) : c.dim;
            out[size_t(d)] = 0;
            for (const Shape& s : c.shapes) out[size_t(d)] += s[size_t(d)];
            const Tensor dy = test::random_tensor(out, 50);
            const CatRun e = test::naive_reference([&] { return run_cat(in, layout, c.dim, dy, Device::cpu()); });
            const CatRun a = run_cat(in, layout, c.dim, dy, Device::cuda());
            REQUIRE(a.y.device() == Device::cuda());
            require_identical(e.y, cpu(a.y));
            for (size_t i = 0; i < in.size(); i++) require_identical(e.dx[i], cpu(a.dx[i]));
        }
    }
}

TEST_CASE("cuda stack matches naive on every case, forward and backward", "[cuda][shape]") {
    for (const test::StackCase& c : test::stack_cases()) {
        INFO("stack " << shape_str(c.shape) << " dim " << c.dim);
        const Tensor a = test::random_tensor(c.shape, 51), b = test::random_tensor(c.shape, 52, Layout::strided);
        auto f = [&](Device device) {
            Tensor al = a.to(device).detach().requires_grad_(), bl = b.to(device).detach().requires_grad_();
            Tensor y = stack({al, bl, al}, c.dim);
            sum(y * y).backward();
            return std::vector<Tensor>{y, al.grad(), bl.grad()};
        };
        const std::vector<Tensor> e = test::naive_reference([&] { return f(Device::cpu()); });
        const std::vector<Tensor> g = f(Device::cuda());
        require_identical(e[0], cpu(g[0]));
        require_identical(e[2], cpu(g[2]));
        // a appears twice: its gradient adds two slices, 2 * y each (one add of two terms: exact too).
        require_identical(e[1], cpu(g[1]));
    }
}
