// Image batch kernel, CUDA. Grid y walks the samples (grid-stride past 65535), grid x and the threads
// walk the output pixels of one sample (grid-stride), and a thread computes every channel of its pixel:
// it draws the sample's crop and flip with image_draw (a few integer operations), reads the pixel's c
// consecutive bytes once and writes one float per channel plane (consecutive threads write consecutive
// floats of each plane, so the stores coalesce). The pixel index is split into (y, x) with 32-bit
// arithmetic when the plane allows. The value is naive's expression (float(p) / 255 - mean) * inv_std
// spelled with correctly rounded intrinsics, so nothing is contracted into an FMA and the result equals
// naive bit for bit. Indices on the GPU are not checked by the frontend: a sample whose index is outside
// [0, count) is filled with NaN instead of reading outside the data set.
#include "../image.h"
#include "context.h"

namespace dyad::cuda {

namespace {

template <typename Index>
__global__ void image_batch_kernel(ImageBatchShape s, float* __restrict__ out, const uint8_t* __restrict__ images,
                                   const int32_t* __restrict__ indices, const float* __restrict__ mean,
                                   const float* __restrict__ inv_std, uint64_t seed) {
    const Index out_w = Index(s.out_w);
    const Index plane = Index(s.out_h) * out_w;
    const int64_t image_size = s.h * s.w * s.c;
    for (int64_t b = blockIdx.y; b < s.batch; b += gridDim.y) {
        const int64_t index = indices[b];
        const bool bad = index < 0 || index >= s.count;
        const ImageDraw d = image_draw(s, seed, b);
        const uint8_t* img = images + (bad ? 0 : index) * image_size;
        float* sample = out + b * s.c * int64_t(plane);
        for (Index i = Index(blockIdx.x) * Index(blockDim.x) + Index(threadIdx.x); i < plane;
             i += Index(gridDim.x) * Index(blockDim.x)) {
            const Index y = i / out_w;
            const Index x = i - y * out_w;
            const int64_t sy = int64_t(y) + d.dy - s.pad;
            const int64_t sx = (d.flip ? s.out_w - 1 - int64_t(x) : int64_t(x)) + d.dx - s.pad;
            const bool inside = !bad && sy >= 0 && sy < s.h && sx >= 0 && sx < s.w;
            const uint8_t* px = img + (inside ? (sy * s.w + sx) * s.c : 0);
            for (int64_t ch = 0; ch < s.c; ch++) {
                const float v = inside ? __fdiv_rn(float(px[ch]), 255.0f) : 0.0f;
                const float r = __fmul_rn(__fsub_rn(v, mean[ch]), inv_std[ch]);
                sample[ch * int64_t(plane) + int64_t(i)] = bad ? __int_as_float(0x7fc00000) : r;  // quiet NaN
            }
        }
    }
}

}  // namespace

void image_batch(const ImageBatchShape& s, float* out, const uint8_t* images, const int32_t* indices, const float* mean,
                 const float* inv_std, uint64_t seed) {
    const int64_t plane = s.out_h * s.out_w;
    if (s.batch == 0 || s.c == 0 || plane == 0) return;
    const dim3 grid(grid_for(plane), unsigned(std::min<int64_t>(s.batch, 65535)));
    // 32-bit pixel indices while i + the grid stride (at most 2^28) stays below 2^32.
    if (plane < (int64_t(1) << 31))
        image_batch_kernel<uint32_t><<<grid, kBlock, 0, stream()>>>(s, out, images, indices, mean, inv_std, seed);
    else
        image_batch_kernel<int64_t><<<grid, kBlock, 0, stream()>>>(s, out, images, indices, mean, inv_std, seed);
    DYAD_CUDA_CHECK_LAUNCH();
}

}  // namespace dyad::cuda
