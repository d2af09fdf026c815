// Image batch kernels (uint8 HWC data set -> augmented, normalised float NCHW) on the CPU kernel sets:
// naive reference values, the draw, and the frontend's argument errors.
//
// The reference is checked by hand on a tiny data set: seeds are searched whose draw (image_draw) gives a
// chosen crop offset and flip, and the expected windows are written out as pixel values; naive and omp
// must both give them. The draw's ranges are checked over many seeds. Parity of every kernel set with
// naive on the shared cases (tests/support/image_cases.h), through the frontend and on the kernels into
// outputs that start as NaN, strided inputs and an empty batch: tests/ops/image.cpp.
#include "support/catch.h"

#include <cmath>
#include <functional>
#include <limits>
#include <set>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/image.h"
#include "support/compare.h"
#include "support/image_cases.h"

using namespace dyad;
using test::same_bits;

namespace {

constexpr CpuKernels kKernelSets[] = {CpuKernels::naive, CpuKernels::omp};

// The documented value of a pixel: (p / 255 - mean) * (1 / std) in float.
float norm(int p, float mean, float std) { return (float(p) / 255.0f - mean) * (1.0f / std); }

ImageBatchShape draw_shape(int64_t pad, bool crop, bool flip) {
    ImageBatchShape s;
    s.pad = pad;
    s.crop = crop;
    s.flip = flip;
    return s;
}

// The first seed whose draws for samples 0, 1, ... satisfy the predicates, in order.
uint64_t find_seed(const ImageBatchShape& s, const std::vector<std::function<bool(const ImageDraw&)>>& want) {
    for (uint64_t seed = 0; seed < 100000; seed++) {
        bool ok = true;
        for (size_t b = 0; b < want.size() && ok; b++) ok = want[b](image_draw(s, seed, int64_t(b)));
        if (ok) return seed;
    }
    FAIL("no seed gives the wanted draws");
    return 0;
}

// Two images of 2x3 pixels with 2 channels: image k, row y, column x, channel ch holds
// 100 * k + 10 * (3 * y + x + 1) + ch. Values: image 1, channel 0 is {110, 120, 130; 140, 150, 160}.
Tensor tiny_images() {
    std::vector<uint8_t> v;
    for (int k = 0; k < 2; k++)
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 3; x++)
                for (int ch = 0; ch < 2; ch++) v.push_back(uint8_t(100 * k + 10 * (3 * y + x + 1) + ch));
    return Tensor::from_vector(v, {2, 2, 3, 2});
}

const std::vector<float> kTinyMean = {0.0f, 0.5f}, kTinyStd = {1.0f, 0.25f};

// The expected output of one sample from its window written as pixel values per channel (0 = padding).
std::vector<float> expect_tiny(const std::vector<std::vector<int>>& planes) {
    std::vector<float> out;
    for (size_t ch = 0; ch < planes.size(); ch++)
        for (int p : planes[ch]) out.push_back(norm(p, kTinyMean[ch], kTinyStd[ch]));
    return out;
}

Tensor run_image_batch(const test::ImageCase& k) {
    return image_batch(test::image_data(k), test::image_indices(k), test::image_mean(k.c), test::image_std(k.c), k.aug,
                       k.seed);
}

}  // namespace

// ---------------------------------------------------------------------------- hand-computed values
TEST_CASE("image_batch: hand-computed windows of a tiny image with padding, crop and flip", "[image][naive][omp]") {
    const Tensor images = tiny_images();
    const Tensor one = Tensor::from_vector(std::vector<int32_t>{1}, {1});
    for (CpuKernels kset : kKernelSets) {
        CpuKernelsGuard guard(kset);
        INFO(cpu_kernels_name(kset));
        {
            INFO("no augmentation: the image itself, HWC to CHW");
            const Tensor out = image_batch(images, one, kTinyMean, kTinyStd, ImageAugment{}, 5);
            REQUIRE(out.shape() == Shape{1, 2, 2, 3});
            REQUIRE(out.dtype() == DType::float32);
            REQUIRE(same_bits(out.to_vector<float>(),
                              expect_tiny({{110, 120, 130, 140, 150, 160}, {111, 121, 131, 141, 151, 161}})));
        }
        {
            INFO("padding without crop: the window centred in the padded image (offset (1 - 1, 1 - 1) / 2 = 0)");
            ImageAugment aug;
            aug.pad = 1;
            aug.out_h = 3;
            aug.out_w = 4;
            const Tensor out = image_batch(images, one, kTinyMean, kTinyStd, aug, 5);
            REQUIRE(out.shape() == Shape{1, 2, 3, 4});
            REQUIRE(same_bits(out.to_vector<float>(), expect_tiny({{0, 0, 0, 0, 0, 110, 120, 130, 0, 140, 150, 160},
                                                                   {0, 0, 0, 0, 0, 111, 121, 131, 0, 141, 151, 161}})));
        }
        {
            INFO("crop at offset (0, 0) of the padded image");
            ImageAugment aug;
            aug.pad = 1;
            aug.crop = true;
            const uint64_t seed =
                find_seed(draw_shape(1, true, false), {[](const ImageDraw& d) { return d.dy == 0 && d.dx == 0; }});
            const Tensor out = image_batch(images, one, kTinyMean, kTinyStd, aug, seed);
            REQUIRE(same_bits(out.to_vector<float>(), expect_tiny({{0, 0, 0, 0, 110, 120}, {0, 0, 0, 0, 111, 121}})));
        }
        {
            INFO("crop at offset (2, 1), no flip");
            ImageAugment aug;
            aug.pad = 1;
            aug.crop = true;
            aug.flip = true;
            const uint64_t seed = find_seed(draw_shape(1, true, true),
                                            {[](const ImageDraw& d) { return d.dy == 2 && d.dx == 1 && !d.flip; }});
            const Tensor out = image_batch(images, one, kTinyMean, kTinyStd, aug, seed);
            // Rows 1 and 2 of the image (row 2 is padding), columns 0..2.
            REQUIRE(
                same_bits(out.to_vector<float>(), expect_tiny({{140, 150, 160, 0, 0, 0}, {141, 151, 161, 0, 0, 0}})));
        }
        {
            INFO("crop at offset (2, 2) and flipped");
            ImageAugment aug;
            aug.pad = 1;
            aug.crop = true;
            aug.flip = true;
            const uint64_t seed = find_seed(draw_shape(1, true, true),
                                            {[](const ImageDraw& d) { return d.dy == 2 && d.dx == 2 && d.flip; }});
            const Tensor out = image_batch(images, one, kTinyMean, kTinyStd, aug, seed);
            // src_y = y + 1, src_x = (2 - x) + 1: row 1 read right to left from column 3 (padding).
            REQUIRE(same_bits(out.to_vector<float>(), expect_tiny({{0, 160, 150, 0, 0, 0}, {0, 161, 151, 0, 0, 0}})));
        }
        {
            INFO("two samples: a flipped one and a plain one, images picked by the indices");
            ImageAugment aug;
            aug.flip = true;
            const uint64_t seed = find_seed(draw_shape(0, false, true), {[](const ImageDraw& d) { return d.flip; },
                                                                         [](const ImageDraw& d) { return !d.flip; }});
            const Tensor idx = Tensor::from_vector(std::vector<int32_t>{1, 0}, {2});
            const Tensor out = image_batch(images, idx, kTinyMean, kTinyStd, aug, seed);
            REQUIRE(out.shape() == Shape{2, 2, 2, 3});
            std::vector<float> expect = expect_tiny({{130, 120, 110, 160, 150, 140}, {131, 121, 111, 161, 151, 141}});
            const std::vector<float> second = expect_tiny({{10, 20, 30, 40, 50, 60}, {11, 21, 31, 41, 51, 61}});
            expect.insert(expect.end(), second.begin(), second.end());
            REQUIRE(same_bits(out.to_vector<float>(), expect));
        }
    }
}

TEST_CASE("image_batch: grayscale images, flipped and padded", "[image][naive][omp]") {
    // One 3x4 grayscale image holding 0, 20, ..., 220.
    std::vector<uint8_t> v;
    for (int i = 0; i < 12; i++) v.push_back(uint8_t(20 * i));
    const Tensor images = Tensor::from_vector(v, {1, 3, 4, 1});
    const Tensor idx = Tensor::from_vector(std::vector<int32_t>{0, 0}, {2});
    ImageAugment aug;
    aug.pad = 2;
    aug.crop = true;
    aug.flip = true;
    aug.out_h = 2;
    aug.out_w = 5;
    // Sample 0: offset (1, 3), flipped; sample 1: offset (4, 0), not flipped.
    const uint64_t seed =
        find_seed(draw_shape(2, true, true), {[](const ImageDraw& d) { return d.dy == 1 && d.dx == 3 && d.flip; },
                                              [](const ImageDraw& d) { return d.dy == 4 && d.dx == 0 && !d.flip; }});
    // Sample 0: src_y = y - 1, src_x = (4 - x) + 1: rows -1 (padding) and 0, columns 5, 4, 3, 2, 1.
    // Sample 1: src_y = y + 2, src_x = x - 2: rows 2 and 3 (padding), columns -2 .. 2.
    const std::vector<int> pixels = {0, 0, 0, 0, 0, 0, 0, 60, 40, 20, 0, 0, 160, 180, 200, 0, 0, 0, 0, 0};
    std::vector<float> expect;
    for (int p : pixels) expect.push_back(norm(p, 0.5f, 0.25f));
    for (CpuKernels kset : kKernelSets) {
        CpuKernelsGuard guard(kset);
        INFO(cpu_kernels_name(kset));
        const Tensor out = image_batch(images, idx, {0.5f}, {0.25f}, aug, seed);
        REQUIRE(out.shape() == Shape{2, 1, 2, 5});
        REQUIRE(same_bits(out.to_vector<float>(), expect));
    }
}

TEST_CASE("image_batch: without augmentation every sample is its image, normalised", "[image][naive][omp]") {
    // An independent check on a larger data set: out[b, ch, y, x] = norm(images[idx[b], y, x, ch]).
    const test::ImageCase k = {5, 9, 11, 3, 13, {0, 0, 0, false, false}, 8};
    const std::vector<uint8_t> img = test::image_data(k).to_vector<uint8_t>();
    const std::vector<int32_t> idx = test::image_indices(k).to_vector<int32_t>();
    const std::vector<float> mean = test::image_mean(k.c), std = test::image_std(k.c);
    std::vector<float> expect;
    for (int64_t b = 0; b < k.batch; b++)
        for (int64_t ch = 0; ch < k.c; ch++)
            for (int64_t y = 0; y < k.h; y++)
                for (int64_t x = 0; x < k.w; x++)
                    expect.push_back(norm(img[size_t(((idx[size_t(b)] * k.h + y) * k.w + x) * k.c + ch)],
                                          mean[size_t(ch)], std[size_t(ch)]));
    for (CpuKernels kset : kKernelSets) {
        CpuKernelsGuard guard(kset);
        INFO(cpu_kernels_name(kset));
        REQUIRE(same_bits(run_image_batch(k).to_vector<float>(), expect));
    }
}

// ---------------------------------------------------------------------------- the draw
TEST_CASE("image_draw: offsets cover [0, 2 pad], both flips occur, off when disabled", "[image]") {
    for (int64_t pad : {0, 1, 4, 7}) {
        INFO("pad " << pad);
        std::set<int64_t> dys, dxs;
        int64_t flips = 0, draws = 0;
        for (uint64_t seed : {uint64_t(0), uint64_t(1), uint64_t(12345), uint64_t(0xdeadbeefcafe1234ull)}) {
            for (int64_t b = 0; b < 2000; b++) {
                const ImageDraw d = image_draw(draw_shape(pad, true, true), seed, b);
                REQUIRE(d.dy >= 0);
                REQUIRE(d.dy <= 2 * pad);
                REQUIRE(d.dx >= 0);
                REQUIRE(d.dx <= 2 * pad);
                dys.insert(d.dy);
                dxs.insert(d.dx);
                flips += d.flip;
                draws++;
                const ImageDraw plain = image_draw(draw_shape(pad, false, false), seed, b);
                REQUIRE(plain.dy == pad);
                REQUIRE(plain.dx == pad);
                REQUIRE_FALSE(plain.flip);
                // crop and flip draw independently of each other's switch.
                const ImageDraw crop_only = image_draw(draw_shape(pad, true, false), seed, b);
                REQUIRE(crop_only.dy == d.dy);
                REQUIRE(crop_only.dx == d.dx);
                REQUIRE_FALSE(crop_only.flip);
                REQUIRE(image_draw(draw_shape(pad, false, true), seed, b).flip == d.flip);
            }
        }
        REQUIRE(int64_t(dys.size()) == 2 * pad + 1);
        REQUIRE(int64_t(dxs.size()) == 2 * pad + 1);
        // Flips ~ Binomial(8000, 1/2): sd 45; 6 sd.
        REQUIRE(std::abs(double(flips) - 0.5 * double(draws)) <= 6 * 45.0);
    }
    // Another seed gives another batch.
    int64_t differ = 0;
    for (int64_t b = 0; b < 64; b++) {
        const ImageDraw a = image_draw(draw_shape(4, true, true), 1, b),
                        c = image_draw(draw_shape(4, true, true), 2, b);
        differ += a.dy != c.dy || a.dx != c.dx || a.flip != c.flip;
    }
    REQUIRE(differ > 32);
}

// ---------------------------------------------------------------------------- errors
TEST_CASE("image_batch argument errors name the op and the problem", "[image][errors]") {
    using Catch::Contains;
    const Tensor images = Tensor::zeros({4, 5, 6, 3}, DType::uint8);
    const Tensor idx = Tensor::from_vector(std::vector<int32_t>{0, 3, 1}, {3});
    const std::vector<float> m3 = {0.5f, 0.5f, 0.5f}, s3 = {0.25f, 0.25f, 0.25f};
    const ImageAugment plain;
    REQUIRE_NOTHROW(image_batch(images, idx, m3, s3, plain, 1));
    REQUIRE_THROWS_WITH(image_batch(Tensor(), idx, m3, s3, plain, 1), Contains("image_batch") && Contains("images"));
    REQUIRE_THROWS_WITH(image_batch(images.to(DType::float32), idx, m3, s3, plain, 1),
                        Contains("image_batch") && Contains("uint8") && Contains("float32"));
    REQUIRE_THROWS_WITH(image_batch(Tensor::zeros({5, 6, 3}, DType::uint8), idx, m3, s3, plain, 1),
                        Contains("(count, h, w, c)") && Contains("(5, 6, 3)"));
    REQUIRE_THROWS_WITH(image_batch(images, idx.to(DType::float32), m3, s3, plain, 1),
                        Contains("indices must be int32") && Contains("float32"));
    REQUIRE_THROWS_WITH(image_batch(images, idx.reshape({3, 1}), m3, s3, plain, 1),
                        Contains("indices must be (batch)") && Contains("(3, 1)"));
    REQUIRE_THROWS_WITH(image_batch(images, idx, {0.5f}, {0.25f}, plain, 1),
                        Contains("3 channels") && Contains("mean has 1") && Contains("std 1"));
    REQUIRE_THROWS_WITH(image_batch(images, idx, m3, {0.25f, 0.25f}, plain, 1),
                        Contains("3 channels") && Contains("std 2"));
    REQUIRE_THROWS_WITH(image_batch(images, idx, m3, {0.25f, 0.0f, 0.25f}, plain, 1),
                        Contains("std[1] must be finite and > 0") && Contains("got 0"));
    REQUIRE_THROWS_WITH(image_batch(images, idx, m3, {0.25f, 0.25f, -1.0f}, plain, 1), Contains("std[2]"));
    REQUIRE_THROWS_WITH(image_batch(images, idx, m3, {std::numeric_limits<float>::quiet_NaN(), 1.0f, 1.0f}, plain, 1),
                        Contains("std[0]"));
    ImageAugment big;
    big.out_h = 8;
    big.pad = 1;
    REQUIRE_THROWS_WITH(image_batch(images, idx, m3, s3, big, 1),
                        Contains("window 8x6") && Contains("larger than the padded image 7x8"));
    big.pad = 2;  // 8 <= 5 + 4
    REQUIRE_NOTHROW(image_batch(images, idx, m3, s3, big, 1));
    big.out_w = 11;
    REQUIRE_THROWS_WITH(image_batch(images, idx, m3, s3, big, 1), Contains("window 8x11"));
    ImageAugment bad_pad;
    bad_pad.pad = -1;
    REQUIRE_THROWS_WITH(image_batch(images, idx, m3, s3, bad_pad, 1), Contains("pad must be in [0, 16383], got -1"));
    ImageAugment bad_out;
    bad_out.out_w = -3;
    REQUIRE_THROWS_WITH(image_batch(images, idx, m3, s3, bad_out, 1), Contains("out_h and out_w must be >= 0"));
    REQUIRE_THROWS_WITH(
        image_batch(images, Tensor::from_vector(std::vector<int32_t>{0, 1, 2, 4}, {4}), m3, s3, plain, 1),
        Contains("index 4 at position 3 is out of range [0, 4)"));
    REQUIRE_THROWS_WITH(image_batch(images, Tensor::from_vector(std::vector<int32_t>{0, -2}, {2}), m3, s3, plain, 1),
                        Contains("index -2 at position 1"));
    REQUIRE_THROWS_WITH(image_batch(Tensor::zeros({0, 5, 6, 3}, DType::uint8), idx, m3, s3, plain, 1),
                        Contains("index 0 at position 0 is out of range [0, 0)"));
    REQUIRE_THROWS_WITH(image_batch(Tensor::zeros({4, 0, 6, 3}, DType::uint8), idx, m3, s3, plain, 1),
                        Contains("need h, w and c > 0"));
}
