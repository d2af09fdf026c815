// resize_and_crop, torchvision's Resize(size) + CenterCrop(size): output sizes, which window is kept (the
// centre, offsets rounded half to even), values kept by a same-scale resize, constants kept by any scale,
// bilinear upscaling of small images, odd and very unequal sizes, and the errors.
#include "support/catch.h"

#include <cstdlib>
#include <string>
#include <vector>

#include "dyad/dyad.h"

using namespace dyad;
using Catch::Contains;

namespace {

// An image whose pixel (x, y, k) is f(x, y, k).
template <typename F>
data::Image make(int64_t w, int64_t h, int64_t c, F f) {
    data::Image im;
    im.w = w, im.h = h, im.c = c;
    for (int64_t y = 0; y < h; y++)
        for (int64_t x = 0; x < w; x++)
            for (int64_t k = 0; k < c; k++) im.pixels.push_back(uint8_t(f(x, y, k)));
    return im;
}

uint8_t at(const data::Image& im, int64_t x, int64_t y, int64_t k = 0) {
    return im.pixels[size_t((y * im.w + x) * im.c + k)];
}

}  // namespace

TEST_CASE("resize_and_crop keeps an image of the size as it is", "[data][resize]") {
    const data::Image im = make(28, 28, 1, [](int64_t x, int64_t y, int64_t) { return x * 9 + y; });
    const data::Image out = data::resize_and_crop(im, 28);
    CHECK(out.pixels == im.pixels);
}

TEST_CASE("resize_and_crop scales the shorter side and keeps the centre", "[data][resize]") {
    // Landscape and portrait photos of any size come out size x size, with every channel.
    for (const auto& [w, h] : std::vector<std::pair<int64_t, int64_t>>{{640, 480}, {480, 640}, {3, 1000}, {1, 1}}) {
        INFO(w << "x" << h);
        const data::Image out =
            data::resize_and_crop(make(w, h, 3, [](int64_t, int64_t, int64_t k) { return 50 * k; }), 28);
        REQUIRE(out.w == 28);
        REQUIRE(out.h == 28);
        REQUIRE(out.c == 3);
        // A constant image stays constant at any scale.
        for (int64_t y = 0; y < 28; y++)
            for (int64_t x = 0; x < 28; x++)
                for (int64_t k = 0; k < 3; k++) REQUIRE(at(out, x, y, k) == 50 * k);
    }
    // At the same scale (the shorter side already the size) the window is copied exactly: columns 0..29 of a
    // 31-wide image (offset round(0.5) = 0, half to even as in Python), 2..31 of a 33-wide one (round(1.5)).
    for (const auto& [w, left] :
         std::vector<std::pair<int64_t, int64_t>>{{30, 0}, {31, 0}, {32, 1}, {33, 2}, {35, 2}}) {
        INFO("width " << w);
        const data::Image im = make(w, 30, 1, [](int64_t x, int64_t y, int64_t) { return 5 * x + y; });
        const data::Image out = data::resize_and_crop(im, 30);
        for (int64_t y = 0; y < 30; y++)
            for (int64_t x = 0; x < 30; x++) REQUIRE(at(out, x, y) == at(im, x + left, y));
    }
    // The same vertically, for a portrait image.
    const data::Image tall = make(30, 34, 1, [](int64_t x, int64_t y, int64_t) { return x + 5 * y; });
    const data::Image cropped = data::resize_and_crop(tall, 30);
    for (int64_t y = 0; y < 30; y++)
        for (int64_t x = 0; x < 30; x++) REQUIRE(at(cropped, x, y) == at(tall, x, y + 2));
    // Halving: a white band in the middle third of a 120x60 image fills the centre window of a 30x30 output
    // (the 60x30 resized image cropped to its columns 15..44); only the window's edge columns blend in the
    // black outside it.
    const data::Image band = make(120, 60, 1, [](int64_t x, int64_t, int64_t) { return x >= 30 && x < 90 ? 255 : 0; });
    const data::Image half = data::resize_and_crop(band, 30);
    for (int64_t y = 0; y < 30; y++) {
        for (int64_t x = 1; x < 29; x++) REQUIRE(at(half, x, y) == 255);
        REQUIRE(at(half, 0, y) > 0);
        REQUIRE(at(half, 29, y) > 0);
    }
}

TEST_CASE("resize_and_crop scales small images up bilinearly", "[data][resize]") {
    // 2x2 to 8x8: output pixel centres fall at source x = (i + 0.5) / 4 - 0.5, between the two columns
    // (edges clamped): 0, 0, 25, 75, 125, 175, 200, 200 in every row.
    const data::Image two = make(2, 2, 1, [](int64_t x, int64_t, int64_t) { return 200 * x; });
    const data::Image up = data::resize_and_crop(two, 8);
    REQUIRE(up.w == 8);
    REQUIRE(up.h == 8);
    const int expected[8] = {0, 0, 25, 75, 125, 175, 200, 200};
    for (int64_t y = 0; y < 8; y++)
        for (int64_t x = 0; x < 8; x++) {
            INFO(x << ", " << y);
            REQUIRE(std::abs(int(at(up, x, y)) - expected[x]) <= 1);  // float weights, rounded once
        }
    // A 3x5 RGBA image (alpha resampled like any channel) to 28x28: the 3 columns become 28, the 5 rows 46,
    // cropped to rows 9..36; a vertical gradient stays monotonic and a constant channel constant.
    const data::Image small = make(3, 5, 4, [](int64_t x, int64_t y, int64_t k) {
        return k == 0 ? 60 * y : k == 1 ? 40 * x : k == 2 ? 77 : 255;
    });
    const data::Image big = data::resize_and_crop(small, 28);
    REQUIRE(big.w == 28);
    REQUIRE(big.h == 28);
    REQUIRE(big.c == 4);
    for (int64_t x = 0; x < 28; x++)
        for (int64_t y = 0; y < 28; y++) {
            REQUIRE(at(big, x, y, 2) == 77);
            REQUIRE(at(big, x, y, 3) == 255);
            if (y > 0) REQUIRE(at(big, x, y, 0) >= at(big, x, y - 1, 0));
        }
    CHECK(at(big, 0, 0, 0) > 0);     // row 9 of 46 is past the first source row's centre
    CHECK(at(big, 0, 27, 0) < 240);  // row 36 is before the last one's
}

TEST_CASE("resize_and_crop takes odd and very unequal sizes", "[data][resize]") {
    // Odd sizes both ways, non-square either way up: the size asked, a horizontal gradient kept monotonic.
    for (const auto& [w, h] : std::vector<std::pair<int64_t, int64_t>>{
             {97, 61}, {61, 97}, {65, 64}, {64, 65}, {1, 300}, {300, 1}, {127, 127}}) {
        INFO(w << "x" << h);
        const data::Image im = make(w, h, 3, [w = w](int64_t x, int64_t, int64_t k) { return (255 * x) / w + k; });
        const data::Image out = data::resize_and_crop(im, 31);
        REQUIRE(out.w == 31);
        REQUIRE(out.h == 31);
        REQUIRE(out.pixels.size() == size_t(31 * 31 * 3));
        for (int64_t y = 0; y < 31; y++)
            for (int64_t x = 1; x < 31; x++) REQUIRE(at(out, x, y) >= at(out, x - 1, y));
    }
}

TEST_CASE("resize_and_crop errors name the problem", "[data][resize]") {
    const data::Image im = make(4, 4, 1, [](int64_t, int64_t, int64_t) { return 1; });
    CHECK_THROWS_WITH(data::resize_and_crop(im, 0), Contains("size 0"));
    data::Image short_pixels = im;
    short_pixels.pixels.pop_back();
    CHECK_THROWS_WITH(data::resize_and_crop(short_pixels, 8), Contains("15 pixel bytes for a 4x4x1 image"));
    data::Image empty;
    CHECK_THROWS_WITH(data::resize_and_crop(empty, 8), Contains("0x0"));
}
