// CUDA tests for image: cuda vs naive. The data set and the indices are moved to the GPU and the batch is
// assembled there; it must equal the naive CPU batch bit for bit on every shared case (the same draws,
// the same float expression), through the frontend and on the kernel into an output that starts as NaN.
// Also: strided inputs, an empty batch, an index out of range on the GPU
// (its sample comes out as NaN, the others are untouched) and the device-mismatch error.
#include "support/catch.h"

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "cuda/gpu.h"
#include "dyad/dyad.h"
#include "kernels/cuda/runtime.h"
#include "support/compare.h"
#include "support/image_cases.h"
#include "support/unwritten.h"

using namespace dyad;
using test::cpu;
using test::gpu;
using test::naive_reference;
using test::require_identical;

namespace {

std::string describe(const test::ImageCase& k) {
    std::ostringstream os;
    os << "data set (" << k.count << ", " << k.h << ", " << k.w << ", " << k.c << "), batch " << k.batch << ", out "
       << k.aug.out_h << "x" << k.aug.out_w << ", pad " << k.aug.pad << ", crop " << k.aug.crop << ", flip "
       << k.aug.flip;
    return os.str();
}

}  // namespace

TEST_CASE("cuda image_batch equals naive bit for bit on every case", "[cuda][image]") {
    for (const test::ImageCase& k : test::image_cases()) {
        INFO(describe(k));
        const Tensor images = test::image_data(k), idx = test::image_indices(k);
        const std::vector<float> mean = test::image_mean(k.c), std = test::image_std(k.c);
        const Tensor ref = naive_reference([&] { return image_batch(images, idx, mean, std, k.aug, k.seed); });
        const Tensor out = image_batch(gpu(images), gpu(idx), mean, std, k.aug, k.seed);
        REQUIRE(out.device() == Device::cuda());
        require_identical(ref, cpu(out));
        // Another seed draws another batch where anything is random.
        if (k.aug.pad > 0 && k.aug.crop && k.batch > 4) {
            const Tensor other = image_batch(gpu(images), gpu(idx), mean, std, k.aug, k.seed + 1);
            REQUIRE_FALSE(test::same_bits(cpu(other).to_vector<float>(), ref.to_vector<float>()));
        }
    }
}

TEST_CASE("cuda image_batch kernel writes every output element: equal to naive into NaN", "[cuda][image]") {
    cuda::use_device(0);
    for (const test::ImageCase& k : test::image_cases()) {
        INFO(describe(k));
        const ImageBatchShape s = test::image_kernel_shape(k);
        const Tensor images = test::image_data(k), idx = test::image_indices(k);
        const std::vector<float> mean = test::image_mean(k.c), inv_std = test::image_inv_std(k.c);
        const int64_t n = s.batch * s.c * s.out_h * s.out_w;
        std::vector<float> ref = test::nan_filled<float>(n);
        naive::image_batch(s, ref.data(), images.data<uint8_t>(), idx.data<int32_t>(), mean.data(), inv_std.data(),
                           k.seed);
        REQUIRE(test::count_nan(ref) == 0);
        const Tensor images_g = gpu(images), idx_g = gpu(idx), out = test::nan_tensor(n, Device::cuda());
        const Tensor mean_g = gpu(Tensor::from_vector(mean, {k.c})), inv_g = gpu(Tensor::from_vector(inv_std, {k.c}));
        cuda::image_batch(s, out.data<float>(), images_g.data<uint8_t>(), idx_g.data<int32_t>(), mean_g.data<float>(),
                          inv_g.data<float>(), k.seed);
        REQUIRE(test::same_bits(cpu(out).to_vector<float>(), ref));
    }
}

TEST_CASE("cuda image_batch: strided inputs and an empty batch", "[cuda][image]") {
    const test::ImageCase k = {6, 7, 9, 3, 11, {8, 8, 2, true, true}, 21};
    const Tensor images = test::image_data(k), idx = test::image_indices(k);
    const std::vector<float> mean = test::image_mean(3), std = test::image_std(3);
    const Tensor ref = naive_reference([&] { return image_batch(images, idx, mean, std, k.aug, k.seed); });
    // Every other image of a GPU data set twice as large, every other index of a GPU list twice as long.
    Tensor images_view =
        Tensor::zeros({2 * k.count, k.h, k.w, k.c}, DType::uint8, Device::cuda()).slice(0, 1, 2 * k.count, 2);
    images_view.copy_(gpu(images));
    Tensor idx_view = Tensor::zeros({2 * k.batch}, DType::int32, Device::cuda()).slice(0, 0, 2 * k.batch, 2);
    idx_view.copy_(gpu(idx));
    REQUIRE_FALSE(images_view.is_contiguous());
    require_identical(ref, cpu(image_batch(images_view, idx_view, mean, std, k.aug, k.seed)));
    const Tensor empty =
        image_batch(gpu(images), Tensor::zeros({0}, DType::int32, Device::cuda()), mean, std, k.aug, k.seed);
    REQUIRE(empty.shape() == Shape{0, 3, 8, 8});
    REQUIRE(empty.device() == Device::cuda());
}

TEST_CASE("cuda image_batch: an index out of range on the GPU gives a NaN sample", "[cuda][image]") {
    const test::ImageCase k = {4, 5, 6, 3, 5, {0, 0, 1, true, true}, 31};
    const Tensor images = test::image_data(k);
    const std::vector<float> mean = test::image_mean(3), std = test::image_std(3);
    const std::vector<int32_t> good = {0, 3, 1, 2, 3};
    const Tensor ref =
        naive_reference([&] { return image_batch(images, Tensor::from_vector(good, {5}), mean, std, k.aug, k.seed); });
    std::vector<int32_t> bad = good;
    bad[1] = 4;   // == count
    bad[3] = -7;  // negative
    const Tensor out =
        cpu(image_batch(gpu(images), Tensor::from_vector(bad, {5}, Device::cuda()), mean, std, k.aug, k.seed));
    const std::vector<float> o = out.to_vector<float>(), r = ref.to_vector<float>();
    const size_t per_sample = o.size() / 5;
    for (size_t b = 0; b < 5; b++) {
        INFO("sample " << b);
        const std::vector<float> os(o.begin() + long(b * per_sample), o.begin() + long((b + 1) * per_sample));
        const std::vector<float> rs(r.begin() + long(b * per_sample), r.begin() + long((b + 1) * per_sample));
        if (b == 1 || b == 3) {
            size_t nans = 0;
            for (float v : os) nans += std::isnan(v);
            REQUIRE(nans == os.size());
        } else {
            REQUIRE(test::same_bits(os, rs));
        }
    }
}

TEST_CASE("cuda image_batch: images and indices on different devices is an error", "[cuda][image][errors]") {
    using Catch::Contains;
    const Tensor images = Tensor::zeros({2, 3, 3, 1}, DType::uint8);
    const Tensor idx = Tensor::from_vector(std::vector<int32_t>{0, 1}, {2});
    REQUIRE_THROWS_WITH(image_batch(gpu(images), idx, {0.5f}, {0.5f}, ImageAugment{}, 1),
                        Contains("images on cuda:0 but indices on cpu"));
    REQUIRE_THROWS_WITH(image_batch(images, gpu(idx), {0.5f}, {0.5f}, ImageAugment{}, 1),
                        Contains("images on cpu but indices on cuda:0"));
    // Argument checks happen before anything runs on the GPU.
    REQUIRE_THROWS_WITH(image_batch(gpu(images), gpu(idx), {0.5f, 0.5f}, {0.5f}, ImageAugment{}, 1),
                        Contains("1 channels"));
}
