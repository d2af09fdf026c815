// Image batch kernel, OpenMP: threads over the batch. A pixel is a byte, so every value the output can
// hold is one of 256 per channel: they are computed once per call into a table with naive's expression,
// (float(p) / 255 - mean) * inv_std, which makes the result equal naive's bit for bit (the zero padding
// is entry 0). Each output row is then split into its padded ends and the part read from the image,
// walked forward or, for a flipped sample, backward.
#include <algorithm>
#include <vector>

#include "../image.h"

namespace dyad::omp {

namespace {

int64_t clamp(int64_t v, int64_t lo, int64_t hi) { return std::min(std::max(v, lo), hi); }

}  // namespace

void image_batch(const ImageBatchShape& s, float* out, const uint8_t* images, const int32_t* indices, const float* mean,
                 const float* inv_std, uint64_t seed) {
    if (s.batch == 0 || s.c == 0 || s.out_h == 0 || s.out_w == 0) return;
    std::vector<float> table(size_t(s.c) * 256);
    for (int64_t ch = 0; ch < s.c; ch++)
        for (int p = 0; p < 256; p++) table[size_t(ch * 256 + p)] = (float(p) / 255.0f - mean[ch]) * inv_std[ch];
    const float* lut = table.data();
    const int64_t image_size = s.h * s.w * s.c;

#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < s.batch; b++) {
        const ImageDraw d = image_draw(s, seed, b);
        const uint8_t* img = images + int64_t(indices[b]) * image_size;
        const int64_t off = d.dx - s.pad;  // src_x = x + off, or (out_w - 1 - x) + off when flipped
        // Output columns [x0, x1) read the image; the others are padding.
        int64_t x0, x1;
        if (!d.flip) {
            x0 = clamp(-off, 0, s.out_w);
            x1 = clamp(s.w - off, x0, s.out_w);
        } else {
            const int64_t k = s.out_w - 1 + off;  // src_x = k - x
            x0 = clamp(k - s.w + 1, 0, s.out_w);
            x1 = clamp(k + 1, x0, s.out_w);
        }
        for (int64_t ch = 0; ch < s.c; ch++) {
            const float* t = lut + ch * 256;
            const float zero = t[0];
            for (int64_t y = 0; y < s.out_h; y++) {
                float* row = out + ((b * s.c + ch) * s.out_h + y) * s.out_w;
                const int64_t sy = y + d.dy - s.pad;
                if (sy < 0 || sy >= s.h) {
                    std::fill(row, row + s.out_w, zero);
                    continue;
                }
                const uint8_t* src = img + sy * s.w * s.c + ch;
                std::fill(row, row + x0, zero);
                if (!d.flip) {
                    for (int64_t x = x0; x < x1; x++) row[x] = t[src[(x + off) * s.c]];
                } else {
                    const int64_t k = s.out_w - 1 + off;
                    for (int64_t x = x0; x < x1; x++) row[x] = t[src[(k - x) * s.c]];
                }
                std::fill(row + x1, row + s.out_w, zero);
            }
        }
    }
}

}  // namespace dyad::omp
