// Shared case lists of the image batch tests: the same data sets, windows and augmentations drive the
// omp-vs-naive tests and the CUDA-vs-naive tests. Odd sizes, grayscale and many-channel images, windows
// smaller than, equal to and larger than the stored image, padding wider than the image, and the real
// shape of a 64x64 RGB data set.
#pragma once
#include <cstdint>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/image.h"

namespace dyad::test {

struct ImageCase {
    int64_t count, h, w, c;  // the data set
    int64_t batch;           // samples drawn
    ImageAugment aug;
    uint64_t seed;
};

inline const std::vector<ImageCase>& image_cases() {
    // aug: {out_h, out_w, pad, crop, flip}
    static const std::vector<ImageCase> s = {
        {1, 1, 1, 1, 1, {0, 0, 0, false, false}, 1},       // one pixel
        {3, 5, 7, 3, 5, {0, 0, 0, false, false}, 2},       // the images themselves
        {3, 5, 7, 3, 9, {0, 0, 2, true, true}, 3},         // crop and flip at the stored size
        {4, 7, 5, 1, 11, {3, 9, 2, true, true}, 4},        // grayscale, a short and wide window
        {2, 6, 6, 2, 7, {10, 10, 2, true, false}, 5},      // the window is the whole padded image
        {2, 6, 6, 4, 7, {4, 4, 0, true, true}, 6},         // crop without padding: the origin window
        {5, 9, 11, 3, 13, {0, 0, 3, false, true}, 7},      // flip only
        {5, 9, 11, 3, 13, {5, 7, 1, false, false}, 8},     // a smaller window, centred
        {2, 3, 3, 3, 6, {9, 9, 3, true, true}, 9},         // padding wider than the image
        {7, 33, 17, 5, 3, {31, 15, 1, true, true}, 10},    // odd sizes, five channels
        {1, 2, 3, 3, 40, {2, 3, 1, true, true}, 11},       // many samples of one image: every draw
        {10, 64, 64, 3, 17, {0, 0, 4, true, true}, 12},    // 64x64 RGB with pad 4 (the training setup)
        {3, 17, 19, 3, 257, {16, 16, 2, true, true}, 13},  // a batch past the omp parallel split
    };
    return s;
}

// Pixel bytes of data set `k`: a hash of the position (every value 0..255 occurs in larger sets).
inline Tensor image_data(const ImageCase& k) {
    const int64_t n = k.count * k.h * k.w * k.c;
    std::vector<uint8_t> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; i++) v[size_t(i)] = uint8_t((uint32_t(i) * 2654435761u) >> 24);
    if (n > 1) v[1] = 255;  // the largest value, and 0 (i = 0) as well
    return Tensor::from_vector(v, {k.count, k.h, k.w, k.c});
}

// Indices of the batch: every image, in a scrambled order, with repeats.
inline Tensor image_indices(const ImageCase& k) {
    std::vector<int32_t> v(static_cast<size_t>(k.batch));
    for (int64_t b = 0; b < k.batch; b++) v[size_t(b)] = int32_t((b * 13 + 3) % k.count);
    return Tensor::from_vector(v, {k.batch});
}

inline std::vector<float> image_mean(int64_t c) {
    std::vector<float> m;
    for (int64_t k = 0; k < c; k++) m.push_back(0.3f + 0.11f * float(k));
    return m;
}
inline std::vector<float> image_std(int64_t c) {
    std::vector<float> s;
    for (int64_t k = 0; k < c; k++) s.push_back(0.2f + 0.07f * float(k));
    return s;
}

// The kernel shape of case k, as the image_batch frontend builds it (an out size of 0 is the stored size).
inline ImageBatchShape image_kernel_shape(const ImageCase& k) {
    ImageBatchShape s;
    s.batch = k.batch, s.count = k.count, s.h = k.h, s.w = k.w, s.c = k.c;
    s.out_h = k.aug.out_h ? k.aug.out_h : k.h, s.out_w = k.aug.out_w ? k.aug.out_w : k.w;
    s.pad = k.aug.pad, s.crop = k.aug.crop, s.flip = k.aug.flip;
    return s;
}

// 1 / std, as the kernels take it.
inline std::vector<float> image_inv_std(int64_t c) {
    std::vector<float> v = image_std(c);
    for (float& e : v) e = 1.0f / e;
    return v;
}

}  // namespace dyad::test
