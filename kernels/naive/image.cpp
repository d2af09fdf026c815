// Image batch kernel, naive: the contract of kernels/image.h as plain loops, one output element at a time
// in NCHW order. The value expression (float(pixel) / 255 - mean) * inv_std is the one every backend uses.
#include "../image.h"

namespace dyad::naive {

void image_batch(const ImageBatchShape& s, float* out, const uint8_t* images, const int32_t* indices, const float* mean,
                 const float* inv_std, uint64_t seed) {
    const int64_t image_size = s.h * s.w * s.c;
    for (int64_t b = 0; b < s.batch; b++) {
        const ImageDraw d = image_draw(s, seed, b);
        const uint8_t* img = images + int64_t(indices[b]) * image_size;
        for (int64_t ch = 0; ch < s.c; ch++) {
            for (int64_t y = 0; y < s.out_h; y++) {
                for (int64_t x = 0; x < s.out_w; x++) {
                    const int64_t sy = y + d.dy - s.pad;
                    const int64_t sx = (d.flip ? s.out_w - 1 - x : x) + d.dx - s.pad;
                    float v = 0.0f;
                    if (sy >= 0 && sy < s.h && sx >= 0 && sx < s.w) v = float(img[(sy * s.w + sx) * s.c + ch]) / 255.0f;
                    out[((b * s.c + ch) * s.out_h + y) * s.out_w + x] = (v - mean[ch]) * inv_std[ch];
                }
            }
        }
    }
}

}  // namespace dyad::naive
