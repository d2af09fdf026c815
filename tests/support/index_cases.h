// Shared case lists for the index family (gather, index_select, topk): the omp-vs-naive tests and the
// CUDA-vs-naive tests run the same cases and the same data.
#pragma once
#include <cstdint>
#include <limits>
#include <vector>

#include "dyad/dyad.h"

namespace dyad::test {

// gather(x, dim, index): odd sizes, index smaller than x in other dims, longer than x along dim (values
// repeat), an empty index, and sizes past the omp threshold.
struct GatherCase {
    Shape x;
    int64_t dim;
    Shape index;
};
inline const std::vector<GatherCase>& gather_cases() {
    static const std::vector<GatherCase> c = {
        {{5}, 0, {7}},
        {{3, 4}, 0, {2, 4}},
        {{3, 4}, 1, {3, 6}},
        {{3, 4}, -1, {2, 3}},
        {{2, 3, 5}, 1, {2, 7, 5}},
        {{4, 1, 9}, 2, {4, 1, 3}},
        {{2, 3, 5, 7}, 0, {3, 3, 5, 7}},
        {{128, 33}, 1, {128, 40}},
        {{300, 257}, 0, {301, 257}},  // 77k outputs, each x column hit about once per row: many repeats
        {{7, 9}, 1, {7, 0}},
    };
    return c;
}

// index_select(x, dim, index of n positions).
struct IndexSelectCase {
    Shape x;
    int64_t dim;
    int64_t n;
};
inline const std::vector<IndexSelectCase>& index_select_cases() {
    static const std::vector<IndexSelectCase> c = {
        {{5}, 0, 8},         {{3, 4}, 0, 5},        {{3, 4}, 1, 2}, {{2, 3, 5}, 1, 7},     {{2, 3, 5}, -1, 1},
        {{64, 33}, 0, 1000}, {{4, 6, 8, 9}, 2, 11}, {{7, 9}, 1, 0}, {{1000, 64}, 0, 2000},  // an embedding-like lookup:
                                                                                            // many repeats, over the
                                                                                            // omp threshold
    };
    return c;
}

// topk(x, k, dim): k from 0 to the whole dim, the first, middle and last dim, a classifier's (batch,
// classes) and one long row.
struct TopkCase {
    Shape x;
    int64_t k;
    int64_t dim;
};
inline const std::vector<TopkCase>& topk_cases() {
    static const std::vector<TopkCase> c = {
        {{7}, 3, 0},       {{1}, 1, 0},           {{5, 9}, 9, 1},     {{5, 9}, 0, 1},      {{4, 33}, 3, 0},
        {{3, 5, 7}, 2, 1}, {{2, 3, 5, 7}, 4, -1}, {{64, 1000}, 5, 1}, {{1, 70001}, 10, 1}, {{8, 32, 17, 9}, 3, 1},
    };
    return c;
}

// n index values in [0, size), from a seed (a small LCG: the same values on every platform). Repeats are
// common when n > size.
inline std::vector<int64_t> index_values(int64_t n, int64_t size, uint64_t seed) {
    std::vector<int64_t> v(static_cast<size_t>(n));
    uint64_t s = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    for (auto& e : v) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        e = int64_t((s >> 33) % uint64_t(size));
    }
    return v;
}

// An index tensor of `shape` with values in [0, size), as int32 or int64.
inline Tensor index_tensor(const Shape& shape, int64_t size, uint64_t seed, DType dtype) {
    return Tensor::from_vector(index_values(shape_numel(shape), size, seed), shape).to(dtype);
}

// topk data: normal values, ties (small integers), NaN sprinkled in, infinities, signed zeros.
enum class TopkData { normal, ties, nans, infinities, zeros };
constexpr TopkData kTopkData[] = {TopkData::normal, TopkData::ties, TopkData::nans, TopkData::infinities,
                                  TopkData::zeros};
inline const char* topk_data_name(TopkData d) {
    static const char* names[] = {"normal", "ties", "nans", "infinities", "zeros"};
    return names[int(d)];
}
inline Tensor topk_data(const Shape& shape, TopkData kind, uint64_t seed, DType dtype = DType::float32) {
    NoGradGuard ng;
    manual_seed(seed);
    std::vector<double> v = Tensor::randn(shape, DType::float64).to_vector<double>();
    const std::vector<int64_t> pick = index_values(int64_t(v.size()), 8, seed + 1);
    const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < v.size(); i++) {
        switch (kind) {
            case TopkData::normal:
                break;
            case TopkData::ties:
                v[i] = double(pick[i] % 4);
                break;
            case TopkData::nans:
                if (pick[i] == 0) v[i] = nan;
                break;
            case TopkData::infinities:
                v[i] = pick[i] == 0 ? inf : pick[i] == 1 ? -inf : v[i];
                break;
            case TopkData::zeros:
                v[i] = pick[i] < 3 ? 0.0 : pick[i] < 6 ? -0.0 : v[i];
                break;
        }
    }
    return Tensor::from_vector(v, shape).to(dtype);
}

}  // namespace dyad::test
