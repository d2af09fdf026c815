// Image batch kernels: a batch of uint8 images (a data set held in memory as (N, H, W, C), HWC per image,
// the layout decoders produce) becomes normalised float NCHW, with the training augmentation of small
// CNNs applied on the way: a random crop of the zero-padded image and a random horizontal flip.
//
// For output sample b, image indices[b] is read. Its crop offset (dy, dx) in [0, 2 * pad] and its flip are
// drawn by image_draw() from (seed, b), so every device and thread count makes the same batch. Then
//   src_y = y + dy - pad,  src_x = (flip ? out_w - 1 - x : x) + dx - pad
//   v     = pixel(src_y, src_x, ch) / 255, or 0 outside the image (zero padding)
//   out[b, ch, y, x] = (v - mean[ch]) * inv_std[ch]
// Without `crop`, the window is centred in the padded image: dy = (h + 2 * pad - out_h) / 2 and likewise
// dx (rounded down), so with out == stored size it is the image itself, and a larger window pads evenly;
// without `flip`, no image is flipped. Requires out_h <= h + 2 * pad, out_w <= w + 2 * pad.
#pragma once
#include <cstdint>

#include "shapes.h"  // DYAD_HOST_DEVICE

namespace dyad {

struct ImageBatchShape {
    int64_t batch = 0;             // images in the batch (length of indices)
    int64_t count = 0;             // images in the data set (indices must be < count)
    int64_t h = 0, w = 0, c = 0;   // stored image size and channels
    int64_t out_h = 0, out_w = 0;  // output window
    int64_t pad = 0;               // zero padding around the stored image before cropping
    bool crop = false, flip = false;
};

struct ImageDraw {
    int64_t dy, dx;
    bool flip;
};

// The per-sample augmentation draw: a multiply-xorshift hash of (seed, b), as dropout_uniform.
DYAD_HOST_DEVICE inline ImageDraw image_draw(const ImageBatchShape& s, uint64_t seed, int64_t b) {
    uint32_t x = uint32_t(b) * 0x9e3779b9u + uint32_t(seed);
    x ^= uint32_t(seed >> 32);
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    const uint32_t span = uint32_t(2 * s.pad + 1);
    ImageDraw d;
    d.dy = s.crop ? int64_t((x & 0xffffu) % span) : (s.h + 2 * s.pad - s.out_h) / 2;
    d.dx = s.crop ? int64_t(((x >> 16) & 0x7fffu) % span) : (s.w + 2 * s.pad - s.out_w) / 2;
    d.flip = s.flip && (x >> 31) != 0;
    return d;
}

namespace naive {
// images: (count, h, w, c) uint8; indices: batch int32; mean, inv_std: c floats; out: (batch, c, out_h, out_w).
void image_batch(const ImageBatchShape& s, float* out, const uint8_t* images, const int32_t* indices, const float* mean,
                 const float* inv_std, uint64_t seed);
}  // namespace naive

namespace omp {
// Same contract; threads over the batch. Equal to naive bit for bit.
void image_batch(const ImageBatchShape& s, float* out, const uint8_t* images, const int32_t* indices, const float* mean,
                 const float* inv_std, uint64_t seed);
}  // namespace omp

namespace cuda {
// Same contract, device pointers (images, indices, mean, inv_std, out): the data set stays resident on the
// GPU and only the indices of a batch travel. Equal to naive bit for bit.
void image_batch(const ImageBatchShape& s, float* out, const uint8_t* images, const int32_t* indices, const float* mean,
                 const float* inv_std, uint64_t seed);
}  // namespace cuda

}  // namespace dyad
