// CUDA-only tests for image: an index out of range on the GPU (it cannot be checked without a sync, so
// its sample comes out as NaN and the others are untouched) and the device-mismatch error. Parity with
// naive on every shared case, through the frontend and on the kernel, strided inputs and an empty batch:
// tests/ops/image.cpp.
#include "support/catch.h"

#include <cmath>
#include <vector>

#include "cuda/gpu.h"
#include "dyad/dyad.h"
#include "support/compare.h"
#include "support/image_cases.h"

using namespace dyad;
using test::cpu;
using test::gpu;
using test::naive_reference;

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
