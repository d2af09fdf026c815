// Batch-norm case lists of the kernel-set tests (tests/ops/norm.cpp): (n, c, hw) with odd sizes, planes of
// one value, long planes, many channels; and the shapes of the run-to-run determinism test.
#pragma once
#include <cstdint>
#include <vector>

namespace dyad::test {

struct BnCase {
    int64_t n, c, hw;
};

inline const std::vector<BnCase>& bn_cases() {
    static const std::vector<BnCase> c = {{1, 1, 2},   {3, 5, 7},    {2, 3, 49},    {5, 17, 33}, {7, 3, 1},
                                          {33, 2, 17}, {2, 7, 4097}, {4, 64, 1024}, {3, 1, 3001}};
    return c;
}

// Run to run: the reference CNN's second block at batch 8 (the GPU splits each channel's sums over
// several blocks) and an odd shape over the omp threshold.
inline const std::vector<BnCase>& bn_determinism_cases() {
    static const std::vector<BnCase> c = {{8, 64, 32 * 32}, {9, 13, 515}};
    return c;
}

}  // namespace dyad::test
