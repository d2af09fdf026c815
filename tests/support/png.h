// PNG files built by hand for the tests and the png fuzz corpus: every colour type, bit depth and interlace
// method the format has (the library writes no PNG), filter type 0, the data compressed with zlib.
#pragma once
#include <zlib.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace dyad::test {

struct PngSpec {
    uint32_t w = 1, h = 1;
    unsigned depth = 8;   // bits per sample
    unsigned colour = 2;  // 0 gray, 2 RGB, 3 palette index, 4 gray + alpha, 6 RGB + alpha
    bool interlaced = false;
    std::vector<uint8_t> palette;  // PLTE: RGB triplets (colour 3)
    std::vector<uint8_t> trns;     // tRNS contents, written when not empty
};

inline unsigned png_samples(unsigned colour) { return colour == 2 ? 3 : colour == 4 ? 2 : colour == 6 ? 4 : 1; }

inline void put_be32(std::string& s, uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) s += char((v >> shift) & 0xFF);
}

// One chunk: length, type, data and the CRC of type and data.
inline std::string png_chunk(const std::string& type, const std::string& data) {
    std::string out;
    put_be32(out, uint32_t(data.size()));
    out += type + data;
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(out.data() + 4), uInt(4 + data.size()));
    put_be32(out, uint32_t(crc));
    return out;
}

inline std::string zlib_compress(const std::string& raw) {
    uLongf size = compressBound(uLong(raw.size()));
    std::string out(size, '\0');
    if (compress2(reinterpret_cast<Bytef*>(out.data()), &size, reinterpret_cast<const Bytef*>(raw.data()),
                  uLong(raw.size()), 9) != Z_OK)
        throw std::runtime_error("zlib compress2 failed");
    out.resize(size);
    return out;
}

// The filtered scanlines (filter type 0) of `samples` (w * h * png_samples(colour) values, row-major, each
// below 2^depth), in Adam7's seven passes when interlaced.
inline std::string png_raw(const PngSpec& s, const std::vector<uint16_t>& samples) {
    const unsigned n = png_samples(s.colour);
    std::string raw;
    auto rows = [&](uint32_t x0, uint32_t y0, uint32_t dx, uint32_t dy) {
        if (x0 >= s.w || y0 >= s.h) return;
        for (uint32_t y = y0; y < s.h; y += dy) {
            raw += '\0';
            uint32_t acc = 0, bits = 0;
            for (uint32_t x = x0; x < s.w; x += dx) {
                for (unsigned k = 0; k < n; k++) {
                    const uint16_t v = samples[(size_t(y) * s.w + x) * n + k];
                    if (s.depth == 16) {
                        raw += char(v >> 8), raw += char(v & 0xFF);
                    } else {
                        acc = (acc << s.depth) | v, bits += s.depth;
                        if (bits == 8) raw += char(acc), acc = 0, bits = 0;
                    }
                }
            }
            if (bits > 0) raw += char(acc << (8 - bits));  // the last byte of a row, padded with zero bits
        }
    };
    if (!s.interlaced) {
        rows(0, 0, 1, 1);
    } else {
        const uint32_t pass[7][4] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4},
                                     {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};
        for (const auto& p : pass) rows(p[0], p[1], p[2], p[3]);
    }
    return raw;
}

inline std::string png_ihdr(const PngSpec& s) {
    std::string ihdr;
    put_be32(ihdr, s.w);
    put_be32(ihdr, s.h);
    ihdr += char(s.depth), ihdr += char(s.colour), ihdr += '\0', ihdr += '\0', ihdr += char(s.interlaced ? 1 : 0);
    return png_chunk("IHDR", ihdr);
}

inline const std::string& png_signature() {
    static const std::string sig("\x89PNG\r\n\x1a\n", 8);
    return sig;
}

// A whole file: signature, IHDR, PLTE and tRNS when given, the data in IDAT chunks of at most `idat_size`
// bytes, IEND.
inline std::string png_bytes(const PngSpec& s, const std::vector<uint16_t>& samples, size_t idat_size = 1 << 16) {
    std::string out = png_signature() + png_ihdr(s);
    if (!s.palette.empty()) out += png_chunk("PLTE", std::string(s.palette.begin(), s.palette.end()));
    if (!s.trns.empty()) out += png_chunk("tRNS", std::string(s.trns.begin(), s.trns.end()));
    const std::string z = zlib_compress(png_raw(s, samples));
    for (size_t at = 0; at < z.size(); at += idat_size) out += png_chunk("IDAT", z.substr(at, idat_size));
    return out + png_chunk("IEND", "");
}

// Deterministic samples for a spec: a pattern that uses the whole range of each sample's bits.
inline std::vector<uint16_t> png_pattern(const PngSpec& s) {
    const unsigned n = png_samples(s.colour);
    const uint32_t top = s.colour == 3 ? uint32_t(s.palette.size() / 3) : (1u << s.depth);
    std::vector<uint16_t> v(size_t(s.w) * s.h * n);
    for (size_t i = 0; i < v.size(); i++) v[i] = uint16_t((i * 2654435761u >> 7) % top);
    return v;
}

}  // namespace dyad::test
