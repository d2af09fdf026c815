// image_batch: checks the arguments, resolves the output size, checks CPU indices, then runs the image
// kernel of the data set's device (kernels/image.h). The reciprocals of std are rounded to float here,
// once, so every kernel set multiplies by the same values.
#include <cmath>

#include "dyad/ops.h"
#include "kernels/image.h"
#include "lib/dispatch.h"
#include "lib/ops/common.h"

namespace dyad {

Tensor image_batch(const Tensor& images, const Tensor& indices, const std::vector<float>& mean,
                   const std::vector<float>& std, const ImageAugment& aug, uint64_t seed) {
    const char* op = "image_batch";
    detail::check_defined(op, images, "images");
    detail::check_defined(op, indices, "indices");
    DYAD_CHECK(images.dtype() == DType::uint8, op, ": images must be uint8, got ", dtype_name(images.dtype()), " ",
               shape_str(images.shape()));
    DYAD_CHECK(images.dim() == 4, op, ": images must be (count, h, w, c), got ", shape_str(images.shape()));
    DYAD_CHECK(indices.dtype() == DType::int32, op, ": indices must be int32, got ", dtype_name(indices.dtype()), " ",
               shape_str(indices.shape()));
    DYAD_CHECK(indices.dim() == 1, op, ": indices must be (batch), got ", shape_str(indices.shape()));
    DYAD_CHECK(images.device() == indices.device(), op, ": images on ", images.device().str(), " but indices on ",
               indices.device().str());
    const int64_t count = images.size(0), h = images.size(1), w = images.size(2), c = images.size(3);
    DYAD_CHECK(h > 0 && w > 0 && c > 0, op, ": images (count, h, w, c) need h, w and c > 0, got ",
               shape_str(images.shape()));
    DYAD_CHECK(int64_t(mean.size()) == c && int64_t(std.size()) == c, op, ": images ", shape_str(images.shape()),
               " have ", c, " channels but mean has ", mean.size(), " and std ", std.size(), " entries");
    for (size_t k = 0; k < std.size(); k++)
        DYAD_CHECK(std::isfinite(std[k]) && std[k] > 0.0f, op, ": std[", k, "] must be finite and > 0, got ", std[k]);
    DYAD_CHECK(aug.pad >= 0 && aug.pad <= 16383, op, ": pad must be in [0, 16383], got ", aug.pad);
    DYAD_CHECK(aug.out_h >= 0 && aug.out_w >= 0, op, ": out_h and out_w must be >= 0 (0 = the stored size), got ",
               aug.out_h, " and ", aug.out_w);
    const int64_t out_h = aug.out_h != 0 ? aug.out_h : h, out_w = aug.out_w != 0 ? aug.out_w : w;
    DYAD_CHECK(out_h <= h + 2 * aug.pad && out_w <= w + 2 * aug.pad, op, ": the window ", out_h, "x", out_w,
               " is larger than the padded image ", h + 2 * aug.pad, "x", w + 2 * aug.pad, " (images ", h, "x", w,
               ", pad ", aug.pad, ")");
    const Tensor idx = indices.contiguous();
    const int64_t batch = idx.numel();
    if (idx.device().is_cpu()) {
        const int32_t* iv = idx.data<int32_t>();
        for (int64_t b = 0; b < batch; b++)
            DYAD_CHECK(iv[b] >= 0 && iv[b] < count, op, ": index ", iv[b], " at position ", b, " is out of range [0, ",
                       count, ") for ", count, " images");
    }

    ImageBatchShape s;
    s.batch = batch;
    s.count = count;
    s.h = h;
    s.w = w;
    s.c = c;
    s.out_h = out_h;
    s.out_w = out_w;
    s.pad = aug.pad;
    s.crop = aug.crop;
    s.flip = aug.flip;
    std::vector<float> inv_std(std.size());
    for (size_t k = 0; k < std.size(); k++) inv_std[k] = 1.0f / std[k];

    const Device dev = images.device();
    Tensor out = Tensor::empty({batch, c, out_h, out_w}, DType::float32, dev);
    if (out.numel() == 0) return out;
    const Tensor img = images.contiguous();
    if (dev.is_cuda()) {
        // Freed in stream order: the kernel queued before the free still reads valid memory.
        const Tensor mean_d = Tensor::from_vector(mean, {c}, dev), inv_d = Tensor::from_vector(inv_std, {c}, dev);
        DYAD_CUDA_CALL(dev, image_batch, s, out.data<float>(), img.data<uint8_t>(), idx.data<int32_t>(),
                       mean_d.data<float>(), inv_d.data<float>(), seed);
    } else if (detail::kernel_set(dev) == detail::KernelSet::naive) {
        naive::image_batch(s, out.data<float>(), img.data<uint8_t>(), idx.data<int32_t>(), mean.data(), inv_std.data(),
                           seed);
    } else {
        omp::image_batch(s, out.data<float>(), img.data<uint8_t>(), idx.data<int32_t>(), mean.data(), inv_std.data(),
                         seed);
    }
    return out;
}

}  // namespace dyad
