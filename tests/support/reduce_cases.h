// Shared case lists for the reduce tests: the dim sets reduced on each shape of test::unary_shapes(), and
// kernel-level shapes with data crafted to break reductions (ties, NaN in various places, infinities,
// signed zeros). tests/ops/reduce.cpp runs them on every kernel set.
#pragma once
#include <cstdint>
#include <iterator>
#include <limits>
#include <random>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/shapes.h"  // ReduceShape

namespace dyad::test {

// The dim sets reduced on a shape of nd dims: every single dim, a pair of trailing dims, first + last
// (non-adjacent from 3-D), and the batch-norm-like (0, 2, 3). Tests add "all dims" after these.
inline std::vector<std::vector<int64_t>> reduce_dim_sets(int64_t nd) {
    std::vector<std::vector<int64_t>> dim_sets;
    for (int64_t d = 0; d < nd; d++) dim_sets.push_back({d});
    if (nd >= 2) dim_sets.push_back({-2, -1});
    if (nd >= 3) dim_sets.push_back({0, nd - 1});
    if (nd >= 4) dim_sets.push_back({0, 2, 3});
    return dim_sets;
}

// Kernel shapes that reach every path of every kernel set. omp: short rows, long rows split into chunks,
// inner widths below and above one block, reduce == 1. cuda, with inner == 1: rows up to 1024 take a warp
// each, longer ones a block each, split into chunks when there are fewer than 1024 rows; with inner > 1:
// columns, split along reduce when there are fewer than 1024 tiles of 32.
inline const std::vector<ReduceShape>& crafted_reduce_shapes() {
    static const std::vector<ReduceShape> s = [] {
        std::vector<ReduceShape> v = {
            {1, 200003, 1}, {3, 1000, 1}, {7, 33, 1}, {2, 31, 1}, {1, 70001, 3},  {2, 300, 5},
            {2, 100, 1500}, {1, 2, 2000}, {4, 1, 7},  {1, 1, 1},  {1, 140000, 1}, {5, 4096, 17},
        };
        const ReduceShape cuda[] = {
            {1, 1024, 1},     // the longest warp row
            {1, 1025, 1},     // the shortest block row (split into chunks: one row)
            {1100, 1500, 1},  // a block per row, no split
            {3, 1, 1},        // reduce == 1 on rows
            {1, 5, 40000},    // columns, no split (1250 tiles)
            {2, 3000, 33},    // columns split along reduce, a tile crossing an outer boundary
            {1, 100000, 2},   // columns split into many chunks
        };
        v.insert(v.end(), std::begin(cuda), std::end(cuda));
        return v;
    }();
    return s;
}

// Sums whose work is split (omp: chunks and blocks; cuda: split rows and columns), for the checks that a
// sum gives the same bits from run to run and, in omp, for any thread count.
inline const std::vector<ReduceShape>& split_sum_shapes() {
    static const std::vector<ReduceShape> s = {
        {1, 300001, 1}, {1, 1024, 4096}, {64, 1000, 1}, {3, 5000, 70}, {64, 131072, 1},
    };
    return s;
}

enum class ReduceData { normal, ties, nans, late_nan, infinities, zeros };
constexpr ReduceData kReduceData[] = {ReduceData::normal,   ReduceData::ties,       ReduceData::nans,
                                      ReduceData::late_nan, ReduceData::infinities, ReduceData::zeros};
inline const char* reduce_data_name(ReduceData d) {
    static const char* names[] = {"normal", "ties", "nans", "late_nan", "infinities", "zeros"};
    return names[int(d)];
}

// n values of the given kind, drawn from gen through `normal` (passed in: it keeps a spare value between
// calls, and the caller goes on drawing from it).
inline std::vector<float> crafted_reduce_data(ReduceData kind, size_t n, std::mt19937& gen,
                                              std::normal_distribution<float>& normal) {
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    std::uniform_int_distribution<int> small(0, 3);
    std::vector<float> x(n);
    for (size_t i = 0; i < n; i++) {
        switch (kind) {
            case ReduceData::normal:
                x[i] = normal(gen);
                break;
            case ReduceData::ties:
                x[i] = float(small(gen));
                break;
            case ReduceData::nans:
                x[i] = small(gen) == 0 && (i % 97 == 5) ? nan : normal(gen);
                break;
            case ReduceData::late_nan:
                x[i] = i + 3 >= n ? nan : float(small(gen));
                break;
            case ReduceData::infinities:
                x[i] = small(gen) == 0 ? -inf : small(gen) == 1 ? inf : normal(gen);
                break;
            case ReduceData::zeros:
                x[i] = small(gen) < 2 ? -0.0f : 0.0f;
                break;
        }
    }
    return x;
}

}  // namespace dyad::test
