// The matmul frontend's cases, shared by the CPU and CUDA GEMM tests: operands in every layout and
// transposition, batched and broadcast.
#pragma once
#include <vector>

#include "dyad/tensor.h"
#include "support/random.h"

namespace dyad::test {

// Operands stored with shape a / b (contiguous, or in `layout`), then viewed transposed when t_a / t_b:
// a 2-D operand with x.t(), a 3-D one with transpose(-1, -2).
struct MatmulCase {
    const char* name;
    Shape a, b;
    bool t_a = false, t_b = false;
    Layout layout = Layout::contiguous;
};

inline Tensor view_as(const Tensor& stored, bool t) {
    if (!t) return stored;
    return stored.dim() == 2 ? stored.t() : stored.transpose(-1, -2);
}

inline const std::vector<MatmulCase>& matmul_cases() {
    static const std::vector<MatmulCase> c = {
        {"2-D", {33, 47}, {47, 29}},
        {"2-D, a.t()", {47, 33}, {47, 29}, true, false},
        {"2-D, b.t() (a linear layer)", {33, 47}, {29, 47}, false, true},
        {"2-D, both .t()", {47, 33}, {29, 47}, true, true},
        {"2-D, transposed memory", {33, 47}, {47, 29}, false, false, Layout::transposed},
        {"2-D, strided (copied)", {33, 47}, {47, 29}, false, false, Layout::strided},
        {"3-D batched", {3, 17, 23}, {3, 23, 19}},
        {"3-D, both transpose(-1, -2)", {3, 23, 17}, {3, 19, 23}, true, true},
        {"3-D, transposed memory", {3, 17, 23}, {3, 23, 19}, false, false, Layout::transposed},
        {"2-D x 3-D", {17, 23}, {3, 23, 19}},
        {"3-D x 2-D (shared weight)", {3, 17, 23}, {23, 19}},
        {"3-D x 2-D.t()", {3, 17, 23}, {19, 23}, false, true},
        {"batch 1 x batch 4", {1, 17, 23}, {4, 23, 19}},
        {"batch 4 x batch 1", {4, 17, 23}, {1, 23, 19}},
        {"vector-like rows and columns", {1, 40}, {40, 1}},
    };
    return c;
}

}  // namespace dyad::test
