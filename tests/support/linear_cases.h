// linear's parity cases and their check, shared by tests/ops/linear.cpp (every kernel set) and the CUDA
// tiled GEMM in tests/cuda/test_gemm.cpp: the reference CNN's classifier layers and an odd one, values
// and the gradients of x, weight and bias against the naive kernels.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "dyad/dyad.h"
#include "support/compare.h"
#include "support/kernel_sets.h"
#include "support/random.h"
#include "support/tolerances.h"

namespace dyad::test {

// x (batch, in), weight (out, in), bias (out), upstream gradient dy (batch, out): N(0, 1) from seed, seed
// + 1, + 2, + 3, times the scales. Either the weight is scaled by 1 / sqrt(in) (as a layer's
// initialisation would), or x by 1 / sqrt(in) and dy by 1 / sqrt(batch): y is O(1) either way, so the
// float rounding of naive's sequential dot products stays within the dot rule.
struct LinearCase {
    const char* name;
    int64_t batch, in, out;
    bool scale_weight;  // else x and dy
    uint64_t seed;
    double x_scale() const { return scale_weight ? 1.0 : 1.0 / std::sqrt(double(in)); }
    double w_scale() const { return scale_weight ? 1.0 / std::sqrt(double(in)) : 1.0; }
    double dy_scale() const { return scale_weight ? 1.0 : 1.0 / std::sqrt(double(batch)); }
};

inline const std::vector<LinearCase>& linear_cases() {
    static const std::vector<LinearCase> c = {
        // The first classifier layer at batch 16: k = 8192 is the long sum.
        {"classifier 8192 -> 256 at batch 16, weight scaled", 16, 8192, 256, true, 20},
        // The baseline CNN's linear layers at batch 64, and an odd one.
        {"classifier 8192 -> 256 at batch 64", 64, 8192, 256, false, 31},
        {"classifier 256 -> 200 at batch 64", 64, 256, 200, false, 31},
        {"odd 33 -> 5 at batch 7", 7, 33, 5, false, 31},
    };
    return c;
}

// linear(x, w, b) and the gradients of x, w and b on set ks against naive: y sums `in` terms, dx `out`
// (of dy * w, of order sqrt(out) * |w| * |dy| when that is above 1), dw and db `batch`.
inline void check_linear(const KernelSet& ks, const LinearCase& lc) {
    INFO(ks.name << " " << lc.name << ": batch " << lc.batch << " in " << lc.in << " out " << lc.out);
    const Tensor x_host = mul(random_tensor({lc.batch, lc.in}, lc.seed), lc.x_scale()).detach();
    const Tensor w_host = mul(random_tensor({lc.out, lc.in}, lc.seed + 1), lc.w_scale()).detach();
    const Tensor b_host = random_tensor({lc.out}, lc.seed + 2);
    const Tensor dy_host = mul(random_tensor({lc.batch, lc.out}, lc.seed + 3), lc.dy_scale()).detach();
    struct Results {
        Tensor y, dx, dw, db;
    };
    auto run = [](const Tensor& x0, const Tensor& w0, const Tensor& b0, const Tensor& dy) {
        Tensor x = x0.detach().requires_grad_(), w = w0.detach().requires_grad_(), b = b0.detach().requires_grad_();
        const Tensor y = linear(x, w, b);
        sum(mul(y, dy)).backward();
        return Results{y, x.grad(), w.grad(), b.grad()};
    };
    const Results expect = naive_reference([&] { return run(x_host, w_host, b_host, dy_host); });
    const Results got = run(on(ks, x_host), on(ks, w_host), on(ks, b_host), on(ks, dy_host));
    REQUIRE(got.y.device() == ks.device);
    const double dx_scale = std::max(1.0, std::sqrt(double(lc.out)) * lc.w_scale() * lc.dy_scale());
    require_close(expect.y, got.y, tol::dot(ks, lc.in));
    require_close(expect.dx, got.dx, tol::dot_scaled(ks, lc.out, dx_scale));
    require_close(expect.dw, got.dw, tol::dot(ks, lc.batch));
    require_close(expect.db, got.db, tol::dot(ks, lc.batch));
}

}  // namespace dyad::test
