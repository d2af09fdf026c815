// Shared case lists: the same shapes drive the omp-vs-naive tests and the CUDA-vs-naive tests. Odd sizes
// (1, 3, 5, 7, 17, 33 ...), the reference CNN's real shapes, and degenerate ones.
#pragma once
#include <vector>

#include "dyad/tensor.h"

namespace dyad::test {

// Shapes for unary elementwise ops and reductions.
inline const std::vector<Shape>& unary_shapes() {
    static const std::vector<Shape> s = {
        {1},
        {7},
        {33},
        {3, 5},
        {17, 1},
        {1, 33},
        {3, 5, 7},
        {2, 3, 5, 7},
        {65537},
        {128, 33},        // crosses the omp parallel threshold
        {8, 32, 17, 9},   // conv-like NCHW, odd spatial
        {4, 32, 64, 64},  // baseline CNN layer 1 activations (batch 4)
    };
    return s;
}

// Pairs of shapes that broadcast, including every corner: scalar-like, leading dims, 1s in the middle.
struct BroadcastCase {
    Shape a, b;
};
inline const std::vector<BroadcastCase>& broadcast_cases() {
    static const std::vector<BroadcastCase> s = {
        {{7}, {7}},
        {{3, 5}, {3, 5}},
        {{3, 5}, {5}},
        {{3, 5}, {3, 1}},
        {{3, 1}, {1, 5}},
        {{1}, {3, 5, 7}},
        {{5, 1, 7}, {3, 1}},
        {{2, 3, 5, 7}, {3, 1, 7}},
        {{17, 33}, {1, 33}},
        {{128, 256}, {256}},
        {{4, 32, 17, 17}, {32, 1, 1}},
        {{300, 257}, {300, 257}},  // large enough for the omp threads
    };
    return s;
}

// GEMM cases: m, n, k with transposes, odd sizes around the micro-kernel tile sizes, and the baseline
// CNN's linear layers (batch 64: 8192 -> 256 and 256 -> 200).
struct GemmCase {
    int64_t batch, m, n, k;
    bool trans_a, trans_b;
};
inline const std::vector<GemmCase>& gemm_cases() {
    static const std::vector<GemmCase> s = {
        {1, 1, 1, 1, false, false},     {1, 3, 5, 7, false, false},     {1, 5, 3, 7, true, false},
        {1, 7, 5, 3, false, true},      {1, 17, 33, 9, true, true},     {1, 1, 65, 33, false, false},
        {1, 65, 1, 33, false, false},   {1, 33, 65, 1, false, false},   {3, 17, 19, 23, false, false},
        {2, 31, 47, 129, true, false},  {1, 97, 101, 259, false, true}, {1, 64, 256, 8192, false, true},
        {1, 64, 200, 256, false, true}, {1, 256, 200, 64, true, false}, {1, 300, 500, 333, false, false},
    };
    return s;
}

}  // namespace dyad::test
