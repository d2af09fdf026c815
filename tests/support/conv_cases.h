// Shared convolution cases: the same shapes drive the omp-vs-naive tests and the CUDA-vs-naive tests.
// Odd sizes throughout, every stride/padding corner (taps entirely in the padding, a kernel larger than
// the input, a stride larger than the kernel), 1x1 convolutions and conv3-like layers.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/conv.h"

namespace dyad::test {

struct ConvCase {
    const char* name;
    int64_t n, c, h, w, k, r, s;
    int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
};

inline Conv2dShape shape_of(const ConvCase& cc) {
    Conv2dShape s;
    s.n = cc.n, s.c = cc.c, s.h = cc.h, s.w = cc.w, s.k = cc.k, s.r = cc.r, s.s = cc.s;
    s.stride_h = cc.stride_h, s.stride_w = cc.stride_w, s.pad_h = cc.pad_h, s.pad_w = cc.pad_w;
    s.p = (s.h + 2 * s.pad_h - s.r) / s.stride_h + 1;
    s.q = (s.w + 2 * s.pad_w - s.s) / s.stride_w + 1;
    return s;
}

// With 2 or 3 threads, batches of 4, 6, 8 and 9 run one image per thread in the omp kernels; 1, 3, 5
// and 7 run the images in turn with the GEMM threaded.
inline const std::vector<ConvCase>& conv_cases() {
    static const std::vector<ConvCase> c = {
        {"C = 1, K = 1, 3x3", 1, 1, 7, 7, 1, 3, 3},
        {"3x3 pad 1", 3, 3, 9, 11, 5, 3, 3, 1, 1, 1, 1},
        {"3x3 stride 2 pad 1", 5, 2, 13, 9, 3, 3, 3, 2, 2, 1, 1},
        {"5x3 stride (2, 1) pad (2, 1)", 2, 3, 11, 13, 7, 5, 3, 2, 1, 2, 1},
        {"1x1 (no im2col), N = 7", 7, 5, 9, 7, 3, 1, 1},
        {"1x1 stride 2", 4, 5, 9, 7, 9, 1, 1, 2, 2},
        {"1x1 pad 1", 3, 3, 5, 7, 5, 1, 1, 1, 1, 1, 1},
        {"N = 1", 1, 4, 17, 15, 5, 3, 3, 1, 1, 1, 1},
        {"3x5 stride (1, 2) pad (2, 0), K = 11, N = 9", 9, 3, 15, 17, 11, 3, 5, 1, 2, 2, 0},
        {"C = 1, 7x7 stride 2 pad 3", 4, 1, 33, 31, 5, 7, 7, 2, 2, 3, 3},
        {"kernel as large as the input", 5, 3, 5, 5, 3, 5, 5},
        {"kernel larger than the input, inside the padding", 2, 2, 3, 3, 3, 4, 4, 1, 1, 1, 1},
        {"stride larger than the kernel", 3, 2, 10, 11, 3, 2, 2, 3, 3},
        {"5x5 pad 2 on a 1x1 image: taps entirely in the padding", 3, 2, 1, 1, 3, 5, 5, 1, 1, 2, 2},
        {"5x5 pad 2 on 6x2 images", 2, 2, 6, 2, 3, 5, 5, 1, 1, 2, 2},
        {"padding 2, stride 2, even kernel", 6, 3, 8, 9, 5, 2, 4, 2, 2, 2, 2},
        {"several row chunks per image (conv3-like)", 8, 32, 16, 16, 65, 3, 3, 1, 1, 1, 1},
        {"uneven row chunks", 6, 16, 33, 33, 9, 3, 3, 1, 1, 1, 1},
    };
    return c;
}

}  // namespace dyad::test
