// Batch-norm case list shared by the CPU kernel tests (tests/kernels/test_norm.cpp) and the CUDA tests
// (tests/cuda/test_norm.cpp): (n, c, hw) with odd sizes, planes of one value, long planes, many channels.
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

}  // namespace dyad::test
