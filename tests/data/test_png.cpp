// PNG files and decode_image: every colour type, bit depth and interlace method decodes to the expected
// pixels; the structural check accepts them and rejects broken files (empty, other formats, every
// truncation, bad CRCs, impossible headers, misplaced or unknown chunks, data too short for the declared
// size) before the decoder sees them; decode_image tells the formats apart and names the file.
#include "support/catch.h"

#include <filesystem>
#include <string>
#include <vector>

#include "dyad/dyad.h"
#include "support/files.h"
#include "support/png.h"

using namespace dyad;
using Catch::Contains;
using test::write_bytes;
namespace fs = std::filesystem;

namespace {

std::string fresh_dir(const std::string& name) { return dyad::test::fresh_dir("data_png", name); }

std::string check(const std::string& b) {
    return data::check_png(reinterpret_cast<const uint8_t*>(b.data()), b.size());
}

data::Image decode(const std::string& b, int channels = 3) {
    return data::decode_image(reinterpret_cast<const uint8_t*>(b.data()), b.size(), channels);
}

// The 8-bit value stb_image gives a sample of `depth` bits: low depths scaled to 0..255, 16 bits cut to the
// high byte.
uint8_t to8(uint16_t v, unsigned depth) {
    return depth == 16 ? uint8_t(v >> 8) : uint8_t(v * (depth == 1 ? 255 : depth == 2 ? 85 : depth == 4 ? 17 : 1));
}

// The RGB pixels a spec's samples decode to (alpha dropped, palette looked up, gray repeated).
std::vector<uint8_t> expected_rgb(const test::PngSpec& s, const std::vector<uint16_t>& v) {
    const unsigned n = test::png_samples(s.colour);
    std::vector<uint8_t> out;
    for (size_t p = 0; p < size_t(s.w) * s.h; p++) {
        const uint16_t* px = v.data() + p * n;
        if (s.colour == 3) {
            for (int k = 0; k < 3; k++) out.push_back(s.palette[size_t(px[0]) * 3 + size_t(k)]);
        } else if (s.colour == 2 || s.colour == 6) {
            for (int k = 0; k < 3; k++) out.push_back(to8(px[k], s.depth));
        } else {
            for (int k = 0; k < 3; k++) out.push_back(to8(px[0], s.depth));
        }
    }
    return out;
}

// A small valid RGB file.
std::string small_png(uint32_t w = 5, uint32_t h = 4) {
    test::PngSpec s;
    s.w = w, s.h = h;
    return test::png_bytes(s, test::png_pattern(s));
}

// Offset of the first chunk of `type`, or npos.
size_t find_chunk(const std::string& b, const std::string& type) {
    size_t p = 8;
    while (p + 12 <= b.size()) {
        const uint32_t len = (uint32_t(uint8_t(b[p])) << 24) | (uint32_t(uint8_t(b[p + 1])) << 16) |
                             (uint32_t(uint8_t(b[p + 2])) << 8) | uint32_t(uint8_t(b[p + 3]));
        if (b.compare(p + 4, 4, type) == 0) return p;
        p += 12 + len;
    }
    return std::string::npos;
}

// A file from its chunks' types and contents (CRCs computed).
std::string png_of(const std::vector<std::pair<std::string, std::string>>& chunks) {
    std::string out = test::png_signature();
    for (const auto& [type, data] : chunks) out += test::png_chunk(type, data);
    return out;
}

std::string ihdr_data(uint32_t w, uint32_t h, unsigned depth, unsigned colour, unsigned compression = 0,
                      unsigned filter = 0, unsigned interlace = 0) {
    std::string d;
    test::put_be32(d, w);
    test::put_be32(d, h);
    d += char(depth), d += char(colour), d += char(compression), d += char(filter), d += char(interlace);
    return d;
}

}  // namespace

TEST_CASE("png every colour type, bit depth and interlace method decodes to its pixels", "[data][png]") {
    const std::vector<std::pair<unsigned, std::vector<unsigned>>> pairs = {
        {0, {1, 2, 4, 8, 16}}, {2, {8, 16}}, {3, {1, 2, 4, 8}}, {4, {8, 16}}, {6, {8, 16}}};
    int files = 0;
    for (const auto& [colour, depths] : pairs)
        for (const unsigned depth : depths)
            for (const bool interlaced : {false, true})
                for (const auto& [w, h] : std::vector<std::pair<uint32_t, uint32_t>>{{1, 1}, {7, 5}, {9, 10}}) {
                    INFO("colour " << colour << ", depth " << depth << ", interlaced " << interlaced << ", " << w << "x"
                                   << h);
                    test::PngSpec s;
                    s.w = w, s.h = h, s.depth = depth, s.colour = colour, s.interlaced = interlaced;
                    if (colour == 3) {
                        const unsigned entries = std::min(1u << depth, 37u);
                        for (unsigned e = 0; e < entries * 3; e++) s.palette.push_back(uint8_t(e * 7 + 3));
                    }
                    const std::vector<uint16_t> v = test::png_pattern(s);
                    const std::string bytes = test::png_bytes(s, v, /*idat_size=*/7);  // several IDAT chunks
                    REQUIRE(check(bytes) == "");
                    const data::Image rgb = decode(bytes, 3);
                    REQUIRE(rgb.h == int64_t(h));
                    REQUIRE(rgb.w == int64_t(w));
                    REQUIRE(rgb.c == 3);
                    REQUIRE(rgb.pixels == expected_rgb(s, v));
                    if (colour == 0 || colour == 4) {  // one channel: the gray values themselves
                        const data::Image gray = decode(bytes, 1);
                        REQUIRE(gray.c == 1);
                        for (size_t p = 0; p < gray.pixels.size(); p++) REQUIRE(gray.pixels[p] == rgb.pixels[3 * p]);
                    }
                    files++;
                }
    CHECK(files == 2 * 3 * 15);
    // Transparency chunks are accepted and change no colour.
    test::PngSpec gray;
    gray.w = 3, gray.h = 2, gray.colour = 0, gray.trns = {0, 7};
    const std::vector<uint16_t> gv = test::png_pattern(gray);
    CHECK(decode(test::png_bytes(gray, gv)).pixels == expected_rgb(gray, gv));
    test::PngSpec pal;
    pal.w = 3, pal.h = 2, pal.colour = 3, pal.palette = {10, 20, 30, 40, 50, 60}, pal.trns = {0};
    const std::vector<uint16_t> pv = test::png_pattern(pal);
    CHECK(decode(test::png_bytes(pal, pv)).pixels == expected_rgb(pal, pv));
}

TEST_CASE("png check rejects empty files and other formats", "[data][png]") {
    CHECK(data::check_png(nullptr, 0) == "empty (0 bytes)");
    CHECK_THAT(check("\xFF\xD8\xFF\xE0"), Contains("a JPEG file, not a PNG"));
    CHECK_THAT(check("GIF89a...."), Contains("not a PNG: it starts with 47 49 46 38"));
    CHECK_THAT(check(std::string("\x89PNG\r\n\x1a", 7)), Contains("not a PNG"));
    CHECK_THAT(check(test::png_signature()), Contains("without an IEND"));
    // Bytes after IEND are ignored, as decoders do.
    CHECK(check(small_png() + "trailing") == "");
}

TEST_CASE("png check and decode reject every truncation", "[data][png]") {
    for (const bool interlaced : {false, true}) {
        test::PngSpec s;
        s.w = 9, s.h = 7, s.colour = 6, s.interlaced = interlaced;
        const std::string bytes = test::png_bytes(s, test::png_pattern(s), 40);
        REQUIRE(check(bytes) == "");
        for (size_t cut = 0; cut < bytes.size(); cut++) {
            INFO("interlaced " << interlaced << ", cut at " << cut << " of " << bytes.size());
            const std::string part = bytes.substr(0, cut);
            CHECK(check(part) != "");
            CHECK_THROWS_AS(decode(part), Error);
        }
    }
}

TEST_CASE("png check rejects damaged chunks and impossible headers", "[data][png]") {
    const std::string good = small_png();
    const size_t idat = find_chunk(good, "IDAT");
    REQUIRE(idat != std::string::npos);
    // A flipped bit in any chunk's data: the CRC no longer matches.
    std::string flipped = good;
    flipped[idat + 9] = char(flipped[idat + 9] ^ 0x10);
    CHECK_THAT(check(flipped), Contains("IDAT at byte " + std::to_string(idat) + ": CRC mismatch"));
    CHECK_THROWS_WITH(decode(flipped), Contains("not a valid PNG") && Contains("CRC mismatch"));
    // A length running past the end, and one above 2^31 - 1.
    std::string long_chunk = good;
    long_chunk[idat] = 0x00, long_chunk[idat + 1] = 0x10;
    CHECK_THAT(check(long_chunk), Contains("running past the end of the file"));
    std::string huge = good;
    huge[idat] = char(0x80);
    CHECK_THAT(check(huge), Contains("2^31 - 1"));
    // A type that is not four letters.
    std::string type = good;
    type[idat + 5] = '1';
    CHECK_THAT(check(type), Contains("not four letters"));

    const std::string data = good.substr(idat + 8, good.size() - idat - 8 - 12 - 4);  // the zlib stream
    const std::string rgb = ihdr_data(5, 4, 8, 2);
    auto with_header = [&](const std::string& ihdr) { return png_of({{"IHDR", ihdr}, {"IDAT", data}, {"IEND", ""}}); };
    REQUIRE(check(with_header(rgb)) == "");
    CHECK_THAT(check(with_header(ihdr_data(0, 4, 8, 2))), Contains("size 0x4 is outside 1..16384"));
    CHECK_THAT(check(with_header(ihdr_data(5, 16385, 8, 2))), Contains("size 5x16385"));
    CHECK_THAT(check(with_header(ihdr_data(70000, 70000, 8, 2))), Contains("70000x70000"));
    for (const auto& [colour, depth] :
         std::vector<std::pair<unsigned, unsigned>>{{2, 4}, {3, 16}, {4, 1}, {6, 2}, {0, 3}, {1, 8}, {5, 8}, {7, 8}}) {
        INFO("colour " << colour << " depth " << depth);
        CHECK_THAT(check(with_header(ihdr_data(5, 4, depth, colour))),
                   Contains("colour type " + std::to_string(colour) + " with bit depth " + std::to_string(depth)));
    }
    CHECK_THAT(check(with_header(ihdr_data(5, 4, 8, 2, 1))), Contains("compression method 1"));
    CHECK_THAT(check(with_header(ihdr_data(5, 4, 8, 2, 0, 1))), Contains("filter method 1"));
    CHECK_THAT(check(with_header(ihdr_data(5, 4, 8, 2, 0, 0, 2))), Contains("interlace method 2"));
    CHECK_THAT(check(with_header(rgb + "x")), Contains("IHDR at byte 8 has length 14"));

    // Chunks in the wrong place, missing or unknown.
    CHECK_THAT(check(png_of({{"tEXt", "a"}, {"IHDR", rgb}, {"IDAT", data}, {"IEND", ""}})),
               Contains("the first chunk is tEXt"));
    CHECK_THAT(check(png_of({{"IHDR", rgb}, {"IHDR", rgb}, {"IDAT", data}, {"IEND", ""}})), Contains("a second IHDR"));
    CHECK_THAT(check(png_of({{"IHDR", rgb}, {"IEND", ""}})), Contains("no image data"));
    CHECK_THAT(check(png_of({{"IHDR", rgb}, {"IDAT", data}, {"IEND", "x"}})), Contains("IEND"));
    CHECK_THAT(check(png_of({{"IHDR", rgb}, {"IDAT", data}})), Contains("without an IEND"));
    CHECK_THAT(
        check(png_of(
            {{"IHDR", rgb}, {"IDAT", data.substr(0, 5)}, {"tEXt", "a"}, {"IDAT", data.substr(5)}, {"IEND", ""}})),
        Contains("must be consecutive"));
    CHECK_THAT(check(png_of({{"IHDR", rgb}, {"CgBI", "1234"}, {"IDAT", data}, {"IEND", ""}})),
               Contains("unknown critical chunk CgBI"));
    CHECK(check(png_of({{"IHDR", rgb}, {"zzZz", "ancillary"}, {"IDAT", data}, {"IEND", ""}})) == "");
    // An empty IDAT: refused before the image data (the decoder would copy it into a null buffer), allowed
    // once the data has begun.
    CHECK_THAT(check(png_of({{"IHDR", rgb}, {"IDAT", ""}, {"IDAT", data}, {"IEND", ""}})),
               Contains("IDAT at byte 33 is empty and comes before the image data"));
    CHECK(check(png_of(
              {{"IHDR", rgb}, {"IDAT", data.substr(0, 5)}, {"IDAT", ""}, {"IDAT", data.substr(5)}, {"IEND", ""}})) ==
          "");
    // Palettes: needed by indexed images, refused by gray ones, at most 2^depth and 256 entries.
    const std::string indexed = ihdr_data(5, 4, 2, 3);
    CHECK_THAT(check(png_of({{"IHDR", indexed}, {"IDAT", data}, {"IEND", ""}})), Contains("before any PLTE"));
    CHECK_THAT(check(png_of({{"IHDR", indexed}, {"PLTE", std::string(15, 'p')}, {"IDAT", data}, {"IEND", ""}})),
               Contains("more than a 2-bit index can reach"));
    CHECK_THAT(check(png_of({{"IHDR", indexed}, {"PLTE", std::string(4, 'p')}, {"IDAT", data}, {"IEND", ""}})),
               Contains("PLTE at byte 33 has length 4"));
    CHECK_THAT(check(png_of({{"IHDR", ihdr_data(5, 4, 8, 0)}, {"PLTE", "abc"}, {"IDAT", data}, {"IEND", ""}})),
               Contains("PLTE at byte 33 in a grayscale image"));
    CHECK_THAT(check(png_of({{"IHDR", rgb}, {"IDAT", data}, {"PLTE", "abc"}, {"IEND", ""}})),
               Contains("after the image data"));
    // Transparency: the length its colour type needs, never with an alpha channel.
    CHECK_THAT(check(png_of({{"IHDR", rgb}, {"tRNS", "ab"}, {"IDAT", data}, {"IEND", ""}})),
               Contains("tRNS at byte 33 has length 2"));
    CHECK_THAT(check(png_of({{"IHDR", ihdr_data(5, 4, 8, 6)}, {"tRNS", "ab"}, {"IDAT", data}, {"IEND", ""}})),
               Contains("alpha channel"));
}

TEST_CASE("png check rejects image data too short for the declared size", "[data][png]") {
    // A header-only bomb: a valid 5x4 file whose header claims 16000x16000 RGB (768 MB of pixels). The decoder
    // would allocate that before inflating anything; the check refuses it first.
    const std::string good = small_png();
    const size_t idat = find_chunk(good, "IDAT");
    const std::string data = good.substr(idat + 8, good.size() - idat - 8 - 12 - 4);
    const std::string bomb = png_of({{"IHDR", ihdr_data(16000, 16000, 8, 2)}, {"IDAT", data}, {"IEND", ""}});
    CHECK_THAT(check(bomb), Contains("too short for a 16000x16000 image") && Contains("1032"));
    CHECK_THROWS_WITH(decode(bomb), Contains("not a valid PNG") && Contains("too short"));
    // The bound is exact: one byte of data allows 1032 bytes of scanlines (one filter byte per row).
    auto rows_of = [&](uint32_t w, uint32_t h) {
        return check(png_of({{"IHDR", ihdr_data(w, h, 8, 0)}, {"IDAT", "x"}, {"IEND", ""}}));
    };
    CHECK(rows_of(1031, 1) == "");  // 1032 bytes
    CHECK_THAT(rows_of(1032, 1), Contains("too short"));
    CHECK(rows_of(1, 516) == "");  // 516 rows of a filter byte and a pixel
    CHECK_THAT(rows_of(1, 517), Contains("too short"));
    // Interlaced: the seven passes' rows each have their filter byte. A 2x2 image has passes 1, 6 and 7
    // (1x1, 1x1, 2x1): 2 + 2 + 3 = 7 bytes, within the bound of one byte of data.
    CHECK(check(png_of({{"IHDR", ihdr_data(2, 2, 8, 0, 0, 0, 1)}, {"IDAT", "x"}, {"IEND", ""}})) == "");
}

TEST_CASE("decode_image tells JPEG and PNG apart and names the file and the format", "[data][png][jpeg]") {
    const std::string dir = fresh_dir("formats");
    const std::string png = dir + "/photo.png", jpg = dir + "/photo.jpg";
    write_bytes(png, small_png(6, 3));
    data::Image im;
    im.h = 3, im.w = 6, im.c = 3;
    im.pixels.assign(3 * 6 * 3, 120);
    data::write_jpeg_file(jpg, im);
    CHECK(data::decode_image_file(png).w == 6);
    CHECK(data::decode_image_file(jpg).w == 6);
    CHECK(data::decode_image_file(jpg, 1).c == 1);
    // decode_jpeg stays JPEG-only.
    CHECK_THROWS_WITH(data::decode_jpeg_file(png), Contains(png) && Contains("a PNG file, not a JPEG"));
    // Other formats are named; a damaged PNG says why.
    const std::vector<std::pair<std::string, std::string>> others = {
        {"GIF89a\x01\x00\x01\x00", "a GIF file"},
        {"BM\x3a\x00\x00\x00", "a BMP file"},
        {std::string("RIFF\x10\x00\x00\x00WEBPVP8 ", 16), "a WebP file"},
        {std::string("II*\x00\x08\x00\x00\x00", 8), "a TIFF file"},
        {"hello, world", "not a JPEG or PNG: it starts with 68 65 6C 6C"},
        {"", "empty"},
        {small_png().substr(0, 40), "not a valid PNG: truncated"}};
    for (const auto& [bytes, what] : others) {
        INFO(what);
        const std::string path = dir + "/other.png";
        write_bytes(path, bytes);
        CHECK_THROWS_WITH(data::decode_image_file(path), Contains("'" + path + "'") && Contains(what));
    }
    CHECK_THROWS_WITH(data::decode_image_file(dir + "/missing.png"), Contains(dir + "/missing.png"));
    const std::string bytes = small_png();
    CHECK_THROWS_WITH(data::decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), 2),
                      Contains("channels must be 1 or 3"));
}
