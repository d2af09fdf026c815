// JPEG files: write/decode round trips (RGB and grayscale), single-component files (fixtures in data/images),
// the structural check accepting what the writer makes and rejecting broken files (empty, other formats, every
// truncation, oversized Huffman tables, Huffman symbol values out of range, segments past the end, unsupported
// processes, absurd sizes, frames too large for their scan data), and errors that name the file.
#include "support/catch.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "dyad/dyad.h"
#include "support/files.h"

using namespace dyad;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

// A fresh directory for one test case.
std::string fresh_dir(const std::string& name) { return dyad::test::fresh_dir("data_jpeg", name); }

std::vector<uint8_t> read_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    REQUIRE(f.good());
}

// A smooth image (JPEG keeps it well): gradients that differ per channel.
data::Image smooth_image(int64_t h, int64_t w, int64_t c) {
    data::Image im;
    im.h = h, im.w = w, im.c = c;
    im.pixels.resize(size_t(h * w * c));
    for (int64_t y = 0; y < h; y++)
        for (int64_t x = 0; x < w; x++)
            for (int64_t k = 0; k < c; k++)
                im.pixels[size_t((y * w + x) * c + k)] = uint8_t(40 + (k == 0   ? 150 * x / w
                                                                       : k == 1 ? 150 * y / h
                                                                                : 75 * (x + y) / (w + h)));
    return im;
}

// Mean and largest absolute difference of two images of the same size.
void require_close(const data::Image& a, const data::Image& b, double mean_tol, int max_tol) {
    REQUIRE(a.h == b.h);
    REQUIRE(a.w == b.w);
    REQUIRE(a.c == b.c);
    REQUIRE(a.pixels.size() == b.pixels.size());
    double sum = 0;
    int worst = 0;
    for (size_t i = 0; i < a.pixels.size(); i++) {
        const int d = std::abs(int(a.pixels[i]) - int(b.pixels[i]));
        sum += d;
        worst = std::max(worst, d);
    }
    CHECK(sum / double(a.pixels.size()) <= mean_tol);
    CHECK(worst <= max_tol);
}

// Offset of the first segment with marker FF `code` before the first scan (walking the segment lengths),
// or -1.
long find_segment(const std::vector<uint8_t>& b, uint8_t code) {
    size_t p = 2;
    while (p + 4 <= b.size() && b[p] == 0xFF) {
        const uint8_t m = b[p + 1];
        if (m == code) return long(p);
        if (m == 0xDA) return -1;
        p += 2 + ((size_t(b[p + 2]) << 8) | b[p + 3]);
    }
    return -1;
}

std::string check(const std::vector<uint8_t>& b) { return data::check_jpeg(b.data(), b.size()); }

// A small valid RGB JPEG as bytes.
std::vector<uint8_t> small_jpeg(const std::string& dir, int64_t size = 16) {
    const std::string path = dir + "/small.jpg";
    data::write_jpeg_file(path, smooth_image(size, size, 3), 90);
    return read_bytes(path);
}

// A single-component (grayscale) JPEG of the smooth image: stb_image_write writes three components always,
// so these come from files (data/images/README.md).
std::string gray_fixture(int64_t w, int64_t h) {
    return std::string(DYAD_TEST_IMAGES_DIR) + "/gray_" + std::to_string(w) + "x" + std::to_string(h) + ".jpg";
}

// A small valid JPEG as bytes: RGB written by the library (c = 3), or the 16x16 single-component file (c = 1).
std::vector<uint8_t> small_jpeg_of(const std::string& dir, int64_t c) {
    return c == 3 ? small_jpeg(dir) : read_bytes(gray_fixture(16, 16));
}

}  // namespace

TEST_CASE("jpeg round trip of an RGB image", "[data][jpeg]") {
    const std::string dir = fresh_dir("rgb");
    const data::Image im = smooth_image(24, 40, 3);
    const std::string path = dir + "/rgb.jpg";
    data::write_jpeg_file(path, im, 95);
    const std::vector<uint8_t> bytes = read_bytes(path);
    CHECK(check(bytes) == "");

    const data::Image back = data::decode_jpeg_file(path, 3);
    require_close(back, im, 3.0, 40);
    // From memory: the same pixels.
    const data::Image mem = data::decode_jpeg(bytes.data(), bytes.size(), 3);
    CHECK(mem.pixels == back.pixels);
    // One channel: the luminance of the colours, never the channels themselves.
    const data::Image gray = data::decode_jpeg_file(path, 1);
    REQUIRE(gray.c == 1);
    REQUIRE(gray.pixels.size() == size_t(24 * 40));
}

TEST_CASE("jpeg round trip of a grayscale image", "[data][jpeg]") {
    const std::string dir = fresh_dir("gray");
    const data::Image im = smooth_image(32, 20, 1);
    const std::string path = dir + "/gray.jpg";
    data::write_jpeg_file(path, im, 95);
    const std::vector<uint8_t> bytes = read_bytes(path);
    CHECK(check(bytes) == "");
    // stb_image_write's file has three components, the chroma neutral.
    const long sof = find_segment(bytes, 0xC0);
    REQUIRE(sof > 0);
    CHECK(bytes[size_t(sof) + 9] == 3);
    const data::Image one = data::decode_jpeg_file(path, 1);
    require_close(one, im, 3.0, 40);
    // Three exactly equal channels: neutral chroma adds nothing to any of them.
    const data::Image three = data::decode_jpeg_file(path, 3);
    REQUIRE(three.c == 3);
    REQUIRE(three.h == 32);
    REQUIRE(three.w == 20);
    for (size_t i = 0; i < one.pixels.size(); i++) {
        REQUIRE(three.pixels[3 * i] == three.pixels[3 * i + 1]);
        REQUIRE(three.pixels[3 * i] == three.pixels[3 * i + 2]);
    }
}

TEST_CASE("jpeg single-component files decode to one channel or three equal ones", "[data][jpeg]") {
    // Grayscale JPEGs in the wild (and some of Tiny ImageNet's) have one component; the writer makes none.
    const data::Image im = smooth_image(32, 20, 1);
    const std::string path = gray_fixture(20, 32);
    const std::vector<uint8_t> bytes = read_bytes(path);
    CHECK(check(bytes) == "");
    const long sof = find_segment(bytes, 0xC0);
    REQUIRE(sof > 0);
    REQUIRE(bytes[size_t(sof) + 9] == 1);
    const data::Image one = data::decode_jpeg_file(path, 1);
    require_close(one, im, 3.0, 40);
    // Expanded to three identical channels.
    const data::Image three = data::decode_jpeg_file(path, 3);
    REQUIRE(three.c == 3);
    REQUIRE(three.h == 32);
    REQUIRE(three.w == 20);
    for (size_t i = 0; i < one.pixels.size(); i++) {
        REQUIRE(three.pixels[3 * i] == one.pixels[i]);
        REQUIRE(three.pixels[3 * i + 1] == one.pixels[i]);
        REQUIRE(three.pixels[3 * i + 2] == one.pixels[i]);
    }
}

TEST_CASE("jpeg writer takes grayscale images of any size and quality", "[data][jpeg]") {
    const std::string dir = fresh_dir("gray_sizes");
    // Sizes that are not multiples of 8 or 16 (padded edge blocks and chroma), and busy content.
    for (const int64_t size : {int64_t(1), int64_t(7), int64_t(9), int64_t(33)}) {
        for (const int quality : {10, 75, 100}) {
            INFO("size " << size << ", quality " << quality);
            data::Image im;
            im.h = size, im.w = size + 3, im.c = 1;
            for (int64_t y = 0; y < im.h; y++)
                for (int64_t x = 0; x < im.w; x++) im.pixels.push_back(uint8_t(((x / 2 + y / 3) % 2) ? 230 : 20));
            const std::string path = dir + "/busy.jpg";
            data::write_jpeg_file(path, im, quality);
            REQUIRE(check(read_bytes(path)) == "");
            const data::Image back = data::decode_jpeg_file(path, 1);
            // A high quality keeps the pattern; a low one at least keeps its size and mean.
            if (quality == 100) {
                require_close(back, im, 3.0, 60);
            } else {
                REQUIRE(back.pixels.size() == im.pixels.size());
                double a = 0, b = 0;
                for (size_t i = 0; i < im.pixels.size(); i++) a += im.pixels[i], b += back.pixels[i];
                CHECK(std::abs(a - b) / double(im.pixels.size()) < 25.0);
            }
        }
    }
}

TEST_CASE("jpeg check rejects empty files and other formats", "[data][jpeg]") {
    const std::string dir = fresh_dir("formats");
    CHECK(data::check_jpeg(nullptr, 0) != "");
    const std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    CHECK_THAT(check(png), Contains("PNG"));
    const std::string text = "this is a text file, not an image\n";
    CHECK(check(std::vector<uint8_t>(text.begin(), text.end())) != "");
    CHECK(check({0xFF}) != "");
    CHECK(check({0xFF, 0xD8}) != "");
    CHECK(check({0xFF, 0xD8, 0xFF, 0xD9}) != "");  // SOI, EOI: no frame, no scan

    // A zero-byte file and a text file: decode_jpeg_file names them.
    const std::string empty = dir + "/empty.JPEG", txt = dir + "/notes.JPEG";
    write_bytes(empty, {});
    write_bytes(txt, std::vector<uint8_t>(text.begin(), text.end()));
    for (const std::string& path : {empty, txt}) {
        try {
            (void)data::decode_jpeg_file(path);
            FAIL("no error for " << path);
        } catch (const Error& e) {
            CHECK_THAT(std::string(e.what()), Contains(path));
        }
    }
    CHECK_THROWS_AS(data::decode_jpeg(png.data(), png.size()), Error);
}

TEST_CASE("jpeg check and decode reject every truncation", "[data][jpeg]") {
    const std::string dir = fresh_dir("truncated");
    for (const int64_t c : {int64_t(3), int64_t(1)}) {
        const std::vector<uint8_t> bytes = small_jpeg_of(dir, c);
        REQUIRE(check(bytes) == "");
        REQUIRE(bytes.size() > 100);
        for (size_t cut = 0; cut < bytes.size(); cut++) {
            INFO("channels " << c << ", cut at " << cut << " of " << bytes.size());
            const std::vector<uint8_t> part(bytes.begin(), bytes.begin() + long(cut));
            CHECK(check(part) != "");
            CHECK_THROWS_AS(data::decode_jpeg(part.data(), part.size()), Error);
        }
    }
    // The untruncated file with trailing bytes after EOI still passes (decoders ignore them).
    std::vector<uint8_t> padded = small_jpeg(dir);
    padded.insert(padded.end(), {0, 0, 0, 0});
    CHECK(check(padded) == "");
}

TEST_CASE("jpeg check rejects a Huffman table of more than 256 symbols", "[data][jpeg]") {
    const std::string dir = fresh_dir("dht");
    std::vector<uint8_t> bytes = small_jpeg(dir);
    const long dht = find_segment(bytes, 0xC4);
    REQUIRE(dht > 0);
    // The first table's 16 code counts: 45 codes of length 15 and 255 of length 16 (300 in all, within
    // the code space, so only the symbol count is wrong).
    const size_t counts = size_t(dht) + 5;
    for (size_t j = 0; j < 16; j++) bytes[counts + j] = 0;
    bytes[counts + 14] = 45;
    bytes[counts + 15] = 255;
    const std::string why = check(bytes);
    CHECK_THAT(why, Contains("300"));
    try {
        (void)data::decode_jpeg(bytes.data(), bytes.size());
        FAIL("no error");
    } catch (const Error& e) {
        CHECK_THAT(std::string(e.what()), Contains("300"));
    }
    // Over-subscribed code lengths (3 codes of length 1) are rejected as well.
    std::vector<uint8_t> over = small_jpeg(dir);
    over[size_t(find_segment(over, 0xC4)) + 5] = 3;
    CHECK(check(over) != "");
}

TEST_CASE("jpeg check rejects Huffman symbol values out of range", "[data][jpeg]") {
    const std::string dir = fresh_dir("dht_values");
    // Every table of a valid file: class and id, and where its symbols are. Both files have all their tables
    // in one DHT segment (RGB: DC and AC for luminance and chrominance; single-component: DC and AC).
    struct Table {
        unsigned tc, th;
        size_t symbols, count;
    };
    auto tables_of = [](const std::vector<uint8_t>& b) {
        std::vector<Table> out;
        const long dht = find_segment(b, 0xC4);
        REQUIRE(dht > 0);
        const size_t end = size_t(dht) + 2 + ((size_t(b[size_t(dht) + 2]) << 8) | b[size_t(dht) + 3]);
        size_t p = size_t(dht) + 4;
        while (p < end) {
            size_t total = 0;
            for (size_t j = 0; j < 16; j++) total += b[p + 1 + j];
            out.push_back({unsigned(b[p] >> 4), unsigned(b[p] & 15), p + 17, total});
            p += 17 + total;
        }
        REQUIRE(p == end);
        return out;
    };
    for (const int64_t c : {int64_t(3), int64_t(1)}) {
        const std::vector<uint8_t> good = small_jpeg_of(dir, c);
        REQUIRE(check(good) == "");
        const std::vector<Table> tables = tables_of(good);
        bool dc = false, ac = false;
        for (const Table& t : tables) {
            INFO("channels " << c << ", class " << t.tc << " id " << t.th);
            REQUIRE(t.count > 0);
            dc |= t.tc == 0, ac |= t.tc == 1;
            const std::string table = "class " + std::to_string(t.tc) + ") id " + std::to_string(t.th);
            // The largest valid value passes: 11 for DC; for AC a run of 15 with a 10-bit coefficient.
            std::vector<uint8_t> edge = good;
            edge[t.symbols + t.count - 1] = t.tc == 0 ? 11 : 0xFA;
            CHECK(check(edge) == "");
            // One past it fails, naming the table and the value: DC 12 and 200 (the shift stb_image would do
            // with the latter is out of range); AC a coefficient of 11 bits (0x1B) and of 15 bits (0x0F).
            for (const unsigned bad : t.tc == 0 ? std::vector<unsigned>{12, 200} : std::vector<unsigned>{0x1B, 0x0F}) {
                INFO("value " << bad);
                std::vector<uint8_t> bytes = good;
                bytes[t.symbols + t.count - 1] = uint8_t(bad);
                const std::string why = check(bytes);
                CHECK_THAT(why, Contains(table));
                CHECK_THAT(why, Contains("symbol value " + std::to_string(bad)));
                try {
                    (void)data::decode_jpeg(bytes.data(), bytes.size());
                    FAIL("no error");
                } catch (const Error& e) {
                    CHECK_THAT(std::string(e.what()), Contains("symbol value " + std::to_string(bad)));
                }
            }
            // The first symbol as well (the check covers every one, not just the last).
            std::vector<uint8_t> first = good;
            first[t.symbols] = t.tc == 0 ? 0x10 : 0x0B;
            CHECK_THAT(check(first), Contains(table));
        }
        CHECK(dc);
        CHECK(ac);
    }
    // Every valid file the writer makes still passes: sizes, channels and qualities.
    for (const int64_t c : {int64_t(1), int64_t(3)})
        for (const int64_t size : {int64_t(1), int64_t(8), int64_t(37)})
            for (const int quality : {1, 50, 90, 100}) {
                INFO("channels " << c << ", size " << size << ", quality " << quality);
                const std::string path = dir + "/valid.jpg";
                data::write_jpeg_file(path, smooth_image(size, size + 5, c), quality);
                CHECK(check(read_bytes(path)) == "");
            }
}

TEST_CASE("jpeg check rejects a frame too large for its scan data", "[data][jpeg]") {
    const std::string dir = fresh_dir("bomb");
    // A header-only bomb: a valid 16x16 file whose frame header claims 16000x16000. The decoder would
    // allocate 768 MB for it; the check rejects it first, saying why.
    std::vector<uint8_t> bomb = small_jpeg(dir);
    const long sof = find_segment(bomb, 0xC0);
    REQUIRE(sof > 0);
    const size_t s = size_t(sof);
    bomb[s + 5] = 16000 >> 8, bomb[s + 6] = 16000 & 255;  // height
    bomb[s + 7] = 16000 >> 8, bomb[s + 8] = 16000 & 255;  // width
    const std::string why = check(bomb);
    CHECK_THAT(why, Contains("too short"));
    CHECK_THAT(why, Contains("16000x16000"));
    try {
        (void)data::decode_jpeg(bomb.data(), bomb.size());
        FAIL("no error");
    } catch (const Error& e) {
        // From the check ("not a valid JPEG"), not from the decoder.
        CHECK_THAT(std::string(e.what()), Contains("not a valid JPEG"));
        CHECK_THAT(std::string(e.what()), Contains("too short"));
    }

    // The bound is exact: a grayscale file (one component, 1x1 sampling) with E bytes of scan data may
    // have a frame of 8 E blocks, not one more.
    const std::vector<uint8_t> gray = read_bytes(gray_fixture(8, 8));
    REQUIRE(check(gray) == "");
    const long sos = find_segment(gray, 0xDA), gsof = find_segment(gray, 0xC0);
    REQUIRE(sos > 0);
    REQUIRE(gsof > 0);
    const size_t data_start = size_t(sos) + 2 + ((size_t(gray[size_t(sos) + 2]) << 8) | gray[size_t(sos) + 3]);
    REQUIRE(gray[gray.size() - 2] == 0xFF);
    REQUIRE(gray[gray.size() - 1] == 0xD9);
    const size_t e = gray.size() - 2 - data_start;
    REQUIRE(e > 0);
    REQUIRE(8 * (8 * e + 1) <= 16384);
    auto with_width = [&](size_t w) {
        std::vector<uint8_t> b = gray;
        b[size_t(gsof) + 5] = 0, b[size_t(gsof) + 6] = 8;  // one row of blocks
        b[size_t(gsof) + 7] = uint8_t(w >> 8), b[size_t(gsof) + 8] = uint8_t(w & 255);
        return b;
    };
    INFO("scan data " << e << " bytes");
    CHECK(check(with_width(8 * 8 * e)) == "");
    CHECK_THAT(check(with_width(8 * (8 * e + 1))), Contains("too short"));
    CHECK_THAT(check(with_width(8 * 8 * e + 1)), Contains("too short"));  // a partial block counts as one
}

TEST_CASE("jpeg check rejects segments past the end and bytes between segments", "[data][jpeg]") {
    const std::string dir = fresh_dir("lengths");
    std::vector<uint8_t> bytes = small_jpeg(dir);
    // The first segment after SOI claims 65535 bytes.
    REQUIRE(bytes[2] == 0xFF);
    bytes[4] = 0xFF, bytes[5] = 0xFF;
    CHECK_THAT(check(bytes), Contains("past the end"));
    CHECK_THROWS_AS(data::decode_jpeg(bytes.data(), bytes.size()), Error);

    // A length below 2.
    std::vector<uint8_t> tiny = small_jpeg(dir);
    tiny[4] = 0, tiny[5] = 1;
    CHECK(check(tiny) != "");

    // A stray byte where the next marker should be.
    std::vector<uint8_t> stray = small_jpeg(dir);
    const long dqt = find_segment(stray, 0xDB);
    REQUIRE(dqt > 0);
    stray.insert(stray.begin() + dqt, 0x42);
    CHECK(check(stray) != "");
}

TEST_CASE("jpeg check rejects unsupported processes and absurd frames", "[data][jpeg]") {
    const std::string dir = fresh_dir("frames");
    const std::vector<uint8_t> good = small_jpeg(dir);
    const long sof = find_segment(good, 0xC0);
    REQUIRE(sof > 0);
    const size_t s = size_t(sof);

    std::vector<uint8_t> lossless = good;
    lossless[s + 1] = 0xC3;
    CHECK_THAT(check(lossless), Contains("lossless"));
    CHECK_THROWS_AS(data::decode_jpeg(lossless.data(), lossless.size()), Error);

    std::vector<uint8_t> arithmetic = good;
    arithmetic[s + 1] = 0xC9;
    CHECK_THAT(check(arithmetic), Contains("arithmetic"));

    // Frame header: FF C0, length (2), precision (1), height (2), width (2), components (1), ...
    std::vector<uint8_t> wide = good;
    wide[s + 7] = 0xFF, wide[s + 8] = 0xFF;
    CHECK_THAT(check(wide), Contains("65535"));
    CHECK_THROWS_AS(data::decode_jpeg(wide.data(), wide.size()), Error);

    std::vector<uint8_t> zero_height = good;
    zero_height[s + 5] = 0, zero_height[s + 6] = 0;
    CHECK(check(zero_height) != "");

    std::vector<uint8_t> precision = good;
    precision[s + 4] = 12;
    CHECK_THAT(check(precision), Contains("precision"));

    std::vector<uint8_t> sampling = good;
    sampling[s + 11] = 0x55;  // the first component's sampling factors 5x5
    CHECK(check(sampling) != "");

    // Four components: CMYK or YCCK (Adobe), refused saying so; decode_image_file names the file.
    std::vector<uint8_t> cmyk = good;
    cmyk[s + 9] = 4;
    CHECK_THAT(check(cmyk), Contains("4 components") && Contains("CMYK or YCCK") && Contains("save the image as RGB"));
    const std::string cmyk_path = dir + "/cmyk.jpg";
    std::ofstream(cmyk_path, std::ios::binary)
        .write(reinterpret_cast<const char*>(cmyk.data()), std::streamsize(cmyk.size()));
    CHECK_THROWS_WITH(data::decode_image_file(cmyk_path), Contains(cmyk_path) && Contains("CMYK"));

    std::vector<uint8_t> no_sof = good;
    no_sof[s + 1] = 0xE5;  // the frame header becomes an APP5 segment: the scan has no frame
    CHECK_THAT(check(no_sof), Contains("frame"));
}

TEST_CASE("jpeg errors name the file", "[data][jpeg]") {
    const std::string dir = fresh_dir("errors");
    const std::string missing = dir + "/no_such_file.JPEG";
    try {
        (void)data::decode_jpeg_file(missing);
        FAIL("no error");
    } catch (const Error& e) {
        CHECK_THAT(std::string(e.what()), Contains(missing));
    }
    const std::string unwritable = dir + "/no_such_dir/out.jpg";
    try {
        data::write_jpeg_file(unwritable, smooth_image(8, 8, 3));
        FAIL("no error");
    } catch (const Error& e) {
        CHECK_THAT(std::string(e.what()), Contains(unwritable));
    }
    data::Image bad = smooth_image(8, 8, 3);
    bad.pixels.pop_back();
    CHECK_THROWS_AS(data::write_jpeg_file(dir + "/bad.jpg", bad), Error);
    CHECK_THROWS_AS(data::write_jpeg_file(dir + "/bad.jpg", smooth_image(8, 8, 3), 0), Error);
    const std::string good = dir + "/good.jpg";
    data::write_jpeg_file(good, smooth_image(8, 8, 3));
    try {
        (void)data::decode_jpeg_file(good, 2);
        FAIL("no error for 2 channels");
    } catch (const Error& e) {
        CHECK_THAT(std::string(e.what()), Contains(good));
    }
}
