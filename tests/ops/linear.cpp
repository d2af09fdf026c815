// linear on every kernel set against the naive reference: the reference CNN's classifier layers and an
// odd one, values and the gradients of x, weight and bias (the check: support/linear_cases.h). Known
// values, agreement with matmul(x, w.t()) + b, 1-D and 3-D inputs, transposed weight views, gradient
// accumulation on the CPU kernel sets, float64 gradient checks and errors: tests/kernels/test_linear.cpp;
// linear on the CUDA tiled GEMM: tests/cuda/test_gemm.cpp.
#include "support/catch.h"

#include "dyad/dyad.h"
#include "support/kernel_sets.h"
#include "support/linear_cases.h"

using namespace dyad;

DYAD_KERNEL_TEST("linear matches naive on the classifier layers, values and gradients", "[linear][gemm]") {
    for (const test::LinearCase& lc : test::linear_cases()) test::check_linear(ks, lc);
}
