// PNG files: a structural check of the chunks, run before stb_image sees the bytes (stb_image is not
// hardened against hostile files; this check is what the png fuzz target protects). It reads no byte past
// the end of the buffer and bounds what the decoder allocates by the size of the file.
#include <zlib.h>  // crc32

#include <cstdio>
#include <cstring>
#include <string>

#include "dyad/data.h"

namespace dyad::data {

namespace {

constexpr uint32_t kMaxSide = 16384;  // as check_jpeg and the decoder's STBI_MAX_DIMENSIONS
// Deflate turns at least 2 bits into at most 258 bytes (a length-258 match and its distance, each a
// one-bit code), so a zlib stream of n bytes inflates to at most 1032 n bytes.
constexpr uint64_t kMaxInflation = 1032;

uint32_t be32(const uint8_t* p) {
    return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

std::string hex_bytes(const uint8_t* p, size_t n) {
    std::string out;
    char buf[4];
    for (size_t i = 0; i < n; i++) {
        std::snprintf(buf, sizeof buf, "%02X", unsigned(p[i]));
        out += (i ? " " : "") + std::string(buf);
    }
    return out;
}

bool is_letter(uint8_t c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

// Samples per pixel of a colour type (0 gray, 2 RGB, 3 palette index, 4 gray + alpha, 6 RGB + alpha).
int samples(unsigned colour) { return colour == 2 ? 3 : colour == 4 ? 2 : colour == 6 ? 4 : 1; }

bool valid_depth(unsigned colour, unsigned depth) {
    switch (colour) {
        case 0:
            return depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
        case 3:
            return depth == 1 || depth == 2 || depth == 4 || depth == 8;
        case 2:
        case 4:
        case 6:
            return depth == 8 || depth == 16;
        default:
            return false;
    }
}

// Bytes of the filtered scanlines once inflated: a filter byte per row, per pass when interlaced (Adam7).
uint64_t raw_bytes(uint64_t w, uint64_t h, uint64_t bits_per_pixel, bool interlaced) {
    auto rows = [&](uint64_t pw, uint64_t ph) {
        return pw == 0 || ph == 0 ? 0 : ph * (1 + (pw * bits_per_pixel + 7) / 8);
    };
    if (!interlaced) return rows(w, h);
    // Adam7 passes: first column and row, and the steps between them.
    const uint64_t pass[7][4] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4},
                                 {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};
    uint64_t total = 0;
    for (const auto& p : pass) {
        const uint64_t pw = w > p[0] ? (w - p[0] + p[2] - 1) / p[2] : 0;
        const uint64_t ph = h > p[1] ? (h - p[1] + p[3] - 1) / p[3] : 0;
        total += rows(pw, ph);
    }
    return total;
}

}  // namespace

std::string check_png(const uint8_t* b, size_t n) {
    static const uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (b == nullptr || n == 0) return "empty (0 bytes)";
    if (n < 8 || std::memcmp(b, kSignature, 8) != 0) {
        if (n >= 2 && b[0] == 0xFF && b[1] == 0xD8) return "a JPEG file, not a PNG";
        return "not a PNG: it starts with " + hex_bytes(b, n < 8 ? n : 8) +
               " instead of the signature 89 50 4E 47 0D 0A 1A 0A";
    }
    bool header = false, palette = false, transparency = false, in_data = false, data_done = false;
    uint32_t w = 0, h = 0;
    unsigned depth = 0, colour = 0, interlace = 0;
    uint32_t palette_entries = 0;
    uint64_t data_bytes = 0;  // the zlib stream, over all IDAT chunks
    size_t pos = 8;
    for (;;) {
        const std::string at = "at byte " + std::to_string(pos);
        if (pos == n) return "truncated: the file ends at byte " + std::to_string(n) + " without an IEND chunk";
        if (n - pos < 12)
            return "truncated: the file ends inside the chunk " + at + " (" + std::to_string(n - pos) +
                   " bytes left, a chunk takes at least 12)";
        const uint32_t len = be32(b + pos);
        const uint8_t* type = b + pos + 4;
        if (!is_letter(type[0]) || !is_letter(type[1]) || !is_letter(type[2]) || !is_letter(type[3]))
            return "the chunk " + at + " has the type " + hex_bytes(type, 4) + ", not four letters";
        const std::string name(reinterpret_cast<const char*>(type), 4);
        const std::string chunk = name + " " + at;
        if (len > 0x7FFFFFFFu) return "chunk " + chunk + " has length " + std::to_string(len) + " (2^31 - 1 at most)";
        if (len > n - pos - 12)
            return "truncated or damaged: chunk " + chunk + " has length " + std::to_string(len) +
                   ", running past the end of the file (" + std::to_string(n) + " bytes)";
        const uint8_t* d = type + 4;
        const uint32_t stored_crc = be32(d + len);
        const uint32_t crc = uint32_t(::crc32(::crc32(0L, Z_NULL, 0), type, 4 + len));
        if (crc != stored_crc) {
            char buf[64];
            std::snprintf(buf, sizeof buf, " (stored %08X, computed %08X)", unsigned(stored_crc), unsigned(crc));
            return "chunk " + chunk + ": CRC mismatch" + buf + ": the file is damaged";
        }
        if (!header && name != "IHDR") return "the first chunk is " + chunk + ", not IHDR";
        if (in_data && name != "IDAT") data_done = true;

        if (name == "IHDR") {
            if (header) return "a second IHDR chunk " + at;
            if (len != 13) return "IHDR " + at + " has length " + std::to_string(len) + " (13)";
            w = be32(d), h = be32(d + 4);
            depth = d[8], colour = d[9], interlace = d[12];
            if (w < 1 || w > kMaxSide || h < 1 || h > kMaxSide)
                return "IHDR: size " + std::to_string(w) + "x" + std::to_string(h) + " is outside 1.." +
                       std::to_string(kMaxSide);
            if (!valid_depth(colour, depth))
                return "IHDR: colour type " + std::to_string(colour) + " with bit depth " + std::to_string(depth) +
                       " is not a valid pair (0: 1, 2, 4, 8, 16; 3: 1, 2, 4, 8; 2, 4 and 6: 8, 16)";
            if (d[10] != 0) return "IHDR: compression method " + std::to_string(d[10]) + " (0 only)";
            if (d[11] != 0) return "IHDR: filter method " + std::to_string(d[11]) + " (0 only)";
            if (interlace > 1) return "IHDR: interlace method " + std::to_string(interlace) + " (0 or 1)";
            header = true;
        } else if (name == "PLTE") {
            if (palette) return "a second PLTE chunk " + at;
            if (in_data) return "PLTE " + at + " after the image data";
            if (colour == 0 || colour == 4)
                return "PLTE " + at + " in a grayscale image (colour type " + std::to_string(colour) + ")";
            if (len == 0 || len % 3 != 0 || len / 3 > 256)
                return "PLTE " + at + " has length " + std::to_string(len) + " (1 to 256 entries of 3 bytes)";
            if (colour == 3 && len / 3 > (1u << depth))
                return "PLTE " + at + " has " + std::to_string(len / 3) + " entries, more than a " +
                       std::to_string(depth) + "-bit index can reach";
            palette = true;
            palette_entries = len / 3;
        } else if (name == "tRNS") {
            if (transparency) return "a second tRNS chunk " + at;
            if (in_data) return "tRNS " + at + " after the image data";
            if (colour == 4 || colour == 6)
                return "tRNS " + at + " in an image with an alpha channel (colour type " + std::to_string(colour) + ")";
            if (colour == 3 && !palette) return "tRNS " + at + " before the palette";
            const bool fits = colour == 0 ? len == 2 : colour == 2 ? len == 6 : len >= 1 && len <= palette_entries;
            if (!fits)
                return "tRNS " + at + " has length " + std::to_string(len) + ", wrong for colour type " +
                       std::to_string(colour);
            transparency = true;
        } else if (name == "IDAT") {
            if (data_done) return "IDAT " + at + " after other chunks: the image data must be consecutive";
            if (colour == 3 && !palette) return "IDAT " + at + " of an indexed-colour image before any PLTE";
            // stb_image keeps no buffer until the first IDAT with bytes and copies an empty first chunk into a
            // null one (undefined behaviour, found by the png fuzz target): empty IDATs are allowed once the
            // data has begun, as no encoder writes one before it.
            if (len == 0 && data_bytes == 0)
                return "IDAT " + at + " is empty and comes before the image data (refused: the decoder cannot take it)";
            in_data = true;
            data_bytes += len;
        } else if (name == "IEND") {
            if (len != 0) return "IEND " + at + " has length " + std::to_string(len) + " (0)";
            if (data_bytes == 0) return "no image data: IEND " + at + " before any IDAT with bytes";
            const uint64_t raw = raw_bytes(w, h, uint64_t(depth) * uint64_t(samples(colour)), interlace == 1);
            if (raw > kMaxInflation * data_bytes)
                return "the image data (" + std::to_string(data_bytes) + " bytes) is too short for a " +
                       std::to_string(w) + "x" + std::to_string(h) + " image (" + std::to_string(raw) +
                       " bytes once inflated; deflate expands at most 1032 times)";
            return "";                   // anything after IEND is ignored, as decoders do
        } else if (!(type[0] & 0x20)) {  // an upper-case first letter: critical, must be understood
            return "unknown critical chunk " + chunk;
        }
        pos += 12 + size_t(len);
    }
}

}  // namespace dyad::data
