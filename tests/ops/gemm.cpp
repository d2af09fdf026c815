// GEMM on every kernel set against the naive reference (float, and float64 for the exact product): the
// kernel on the shared cases in every variant (alpha/beta, padded leading dims, shared operands, batches
// accumulating into one C, NaN in C with beta 0, starts off the 16-byte alignment), whole and partial
// 128x128 tiles in every transpose combination, degenerate sizes, and matmul through autograd with its
// operands in every layout, values and gradients. The checks themselves: support/gemm_cases.h. Known
// values, omp's micro-kernel and thread splits, float64 gradient checks and errors:
// tests/kernels/test_gemm.cpp; the CUDA implementations (the tiled kernel, TF32): tests/cuda/test_gemm.cpp.
#include "support/catch.h"

#include <vector>

#include "dyad/dyad.h"
#include "kernels/gemm.h"
#include "support/gemm_cases.h"
#include "support/kernel_sets.h"

using namespace dyad;

DYAD_KERNEL_TEST("gemm matches naive on the shared cases", "[gemm]") {
    // Every case in the plain forms; the cheaper ones (all but the 8192-deep and 300x500x333 cases) also
    // with shared operands and batched accumulation.
    const test::GemmFn gemm = test::gemm_of(ks);
    for (const test::GemmCase& gc : test::gemm_cases()) {
        for (const test::GemmVariant& v : test::gemm_variants()) test::check_gemm(ks, gemm, gc, v);
        if (test::heavy(gc)) continue;
        for (test::GemmVariant v : test::gemm_batched_variants()) {
            v.batch = gc.batch > 1 ? gc.batch : 3;
            test::check_gemm(ks, gemm, gc, v);
        }
    }
}

DYAD_KERNEL_TEST("gemm on whole and partial 128x128 tiles in every transpose combination", "[gemm]") {
    const test::GemmFn gemm = test::gemm_of(ks);
    for (const test::GemmCase& gc : test::gemm_tile_cases())
        for (const test::GemmVariant& v : test::gemm_tile_variants()) test::check_gemm(ks, gemm, gc, v);
}

DYAD_KERNEL_TEST("gemm degenerate sizes: k = 0 scales C by beta, an empty C is left alone", "[gemm]") {
    test::check_gemm_degenerate(ks, test::gemm_of(ks));
}

DYAD_KERNEL_TEST("matmul matches naive in every layout, values and gradients", "[gemm]") {
    for (const test::MatmulCase& mc : test::matmul_cases()) test::check_matmul(ks, mc);
}
