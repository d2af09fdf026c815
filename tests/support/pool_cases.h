// Pooling case lists of the parity tests of every kernel set (tests/ops/pool.cpp) and the CPU tests
// (tests/kernels/test_pool.cpp): fixed-window and adaptive cases on odd, non-square shapes, and the tied
// data (with NaN and -inf, and -0.0 for the fused relu + max pool) that exercises max pooling's tie and
// NaN rules.
#pragma once
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/pool.h"

namespace dyad::test {

// A fixed-window pool case: x shape (N, C, H, W), kernel, stride (0: the kernel), padding.
struct WindowCase {
    Shape x;
    Size2 k, s, p;
};

inline Pool2dShape window_shape(const WindowCase& c) {
    Pool2dShape s;
    s.n = c.x[0], s.c = c.x[1], s.h = c.x[2], s.w = c.x[3];
    s.kh = c.k.h, s.kw = c.k.w;
    s.stride_h = c.s.h ? c.s.h : c.k.h, s.stride_w = c.s.w ? c.s.w : c.k.w;
    s.pad_h = c.p.h, s.pad_w = c.p.w;
    s.p = (s.h + 2 * s.pad_h - s.kh) / s.stride_h + 1;
    s.q = (s.w + 2 * s.pad_w - s.kw) / s.stride_w + 1;
    return s;
}

// Odd and non-square sizes, every padding allowed up to half the kernel, strides below, at and above the
// kernel, and the reference CNN's 2x2/2 pool (with an odd input, where the last row and column drop).
inline const std::vector<WindowCase>& window_cases() {
    static const std::vector<WindowCase> c = {
        {{1, 1, 1, 1}, 1, 0, 0},
        {{2, 3, 7, 9}, 2, 0, 0},
        {{1, 2, 8, 8}, 2, 2, 0},
        {{3, 5, 9, 7}, 3, 2, 1},
        {{2, 3, 11, 13}, {3, 2}, {1, 2}, {1, 0}},
        {{1, 3, 5, 17}, {5, 3}, {3, 1}, {2, 1}},
        {{2, 4, 7, 7}, 3, 1, 1},
        {{3, 2, 6, 5}, {2, 4}, {3, 1}, {1, 2}},
        {{1, 2, 3, 3}, 3, 1, 1},
        {{2, 17, 15, 15}, 3, 3, 0},
        {{4, 32, 33, 33}, 2, 0, 0},  // over the omp parallel threshold
        {{5, 7, 17, 19}, {4, 3}, {2, 3}, {2, 1}},
    };
    return c;
}

// Adaptive cases: x shape and output size, including outputs larger than the input (overlapping windows).
struct AdaptiveCase {
    Shape x;
    Size2 out;
};
inline const std::vector<AdaptiveCase>& adaptive_cases() {
    static const std::vector<AdaptiveCase> c = {
        {{1, 1, 1, 1}, 1},      {{2, 3, 7, 9}, {3, 4}},  {{2, 5, 8, 8}, 1},  {{1, 3, 5, 5}, {7, 6}},
        {{3, 4, 9, 9}, {2, 2}}, {{2, 3, 6, 10}, {6, 5}}, {{4, 64, 9, 7}, 1}, {{2, 33, 13, 11}, {3, 5}},
    };
    return c;
}

inline Pool2dShape adaptive_shape(const AdaptiveCase& c) {
    Pool2dShape s;
    s.n = c.x[0], s.c = c.x[1], s.h = c.x[2], s.w = c.x[3], s.p = c.out.h, s.q = c.out.w;
    return s;
}

// Random values on a coarse grid (many ties within a window), with a few NaN and -inf.
inline std::vector<float> tied_values(int64_t n, uint64_t seed, bool specials) {
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    std::mt19937 rng(static_cast<uint32_t>(seed));
    std::uniform_int_distribution<int> level(-4, 4);
    std::vector<float> v(static_cast<size_t>(n), 0.0f);
    for (auto& e : v) e = 0.5f * float(level(rng));
    if (specials)
        for (size_t i = 7; i < v.size(); i += 97) v[i] = (i / 97) % 2 ? nan : -inf;
    return v;
}

// tied_values with every other zero made -0.0: data for the fused relu + max pool, whose result depends on
// the sign of a zero (relu keeps -0.0, and max pooling keeps the first of equal zeros).
inline std::vector<float> signed_zero_tied_values(int64_t n, uint64_t seed, bool specials) {
    std::vector<float> v = tied_values(n, seed, specials);
    bool flip = false;
    for (auto& e : v)
        if (e == 0.0f) {
            if (flip) e = -0.0f;
            flip = !flip;
        }
    return v;
}

}  // namespace dyad::test
