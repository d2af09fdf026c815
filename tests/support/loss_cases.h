// Softmax and cross-entropy case lists shared by the CPU kernel tests (tests/kernels/test_loss.cpp) and
// the CUDA tests (tests/cuda/test_loss.cpp): 3-D shapes to run softmax along every dim of, the
// cross-entropy class counts and batch sizes, and deterministic labels.
#pragma once
#include <cstdint>
#include <vector>

#include "dyad/dyad.h"

namespace dyad::test {

// Softmax and log-softmax run along every dim of these: rows of 1, odd lengths, long and short rows,
// and the reference CNN's (64, 200) logits as a slice.
inline const std::vector<Shape>& softmax_shapes() {
    static const std::vector<Shape> s = {{1, 1, 1}, {3, 5, 7}, {17, 1, 33}, {2, 300, 65}, {64, 3, 200}, {129, 2, 3}};
    return s;
}

// Cross-entropy: class counts (1, odd, the reference CNN's 200) and batch sizes (odd, above a block).
inline const std::vector<int64_t>& cross_entropy_classes() {
    static const std::vector<int64_t> c = {1, 7, 200};
    return c;
}
inline const std::vector<int64_t>& cross_entropy_batches() {
    static const std::vector<int64_t> n = {1, 3, 65, 1027};
    return n;
}

// Labels in [0, c), deterministic (a small LCG: the values depend only on the seed).
inline Tensor random_labels(int64_t n, int64_t c, uint64_t seed) {
    std::vector<int32_t> v(static_cast<size_t>(n));
    uint64_t s = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    for (auto& l : v) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        l = int32_t((s >> 33) % uint64_t(c));
    }
    return Tensor::from_vector(v, {n});
}

}  // namespace dyad::test
