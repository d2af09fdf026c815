// Shared case lists for the shape family: the strided copy behind contiguous(), cat and stack. The parity
// tests of every kernel set (tests/ops/shape.cpp) and the CPU gradient checks run the same cases.
#pragma once
#include <vector>

#include "dyad/tensor.h"

namespace dyad::test {

// Shapes whose permuted, sliced, strided and broadcast views are copied by the strided copy kernel: every
// rank up to 6, odd sizes, a size-1 dim in the middle.
inline const std::vector<Shape>& strided_copy_shapes() {
    static const std::vector<Shape> s = {{7},          {3, 5},          {17, 33},          {3, 5, 7},
                                         {2, 3, 5, 7}, {3, 1, 5, 2, 7}, {2, 3, 2, 5, 3, 3}};
    return s;
}

// Inputs joined along `dim`: odd sizes, a size-0 input, one input alone, negative dims, the first and the
// last dim, and inputs large enough for the omp threads.
struct CatCase {
    std::vector<Shape> shapes;
    int64_t dim;
};
inline const std::vector<CatCase>& cat_cases() {
    static const std::vector<CatCase> c = {
        {{{7}}, 0},
        {{{3}, {1}, {5}}, 0},
        {{{3, 5}, {4, 5}, {1, 5}}, 0},
        {{{3, 5}, {3, 2}, {3, 7}}, -1},
        {{{2, 3, 4}, {2, 0, 4}, {2, 5, 4}}, 1},
        {{{17, 1, 9}, {17, 4, 9}}, -2},
        {{{2, 3, 5, 7}, {2, 3, 5, 1}, {2, 3, 5, 3}}, 3},
        {{{2, 3, 5, 7}, {1, 3, 5, 7}}, 0},
        {{{128, 33}, {128, 33}, {128, 1}}, 1},
        {{{300, 257}, {1, 257}}, 0},
    };
    return c;
}

// Shapes stacked (three of each) and the dims they are stacked along: every position of the new dim.
struct StackCase {
    Shape shape;
    int64_t dim;
};
inline const std::vector<StackCase>& stack_cases() {
    static const std::vector<StackCase> c = {
        {{}, 0}, {{7}, 0}, {{7}, 1}, {{7}, -1}, {{3, 5}, 0}, {{3, 5}, 1}, {{3, 5}, 2}, {{2, 3, 5}, -2}, {{128, 33}, 1},
    };
    return c;
}

}  // namespace dyad::test
