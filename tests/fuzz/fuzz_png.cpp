// Fuzz target: the PNG structural check, and the decoder behind it for files that pass: to 3 channels, or to
// 1 for inputs of odd size. The check refuses a chunk whose CRC does not match, which a mutation almost
// always breaks, so the target first writes the right CRC into every chunk it can walk (a copy of the input):
// the mutations then reach the rest of the check and the decoder. A rejected file is fine; a decoded image
// must have the size it claims, and resize_and_crop must bring it to 7x7.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "dyad/data.h"
#include "dyad/error.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::vector<uint8_t> b(data, data + size);
    for (size_t pos = 8; b.size() >= 12 && pos <= b.size() - 12;) {
        const uint32_t len = (uint32_t(b[pos]) << 24) | (uint32_t(b[pos + 1]) << 16) | (uint32_t(b[pos + 2]) << 8) |
                             uint32_t(b[pos + 3]);
        if (len > b.size() - 12 - pos) break;
        const uint32_t crc = uint32_t(crc32(crc32(0L, Z_NULL, 0), b.data() + pos + 4, uInt(4 + len)));
        uint8_t* at = b.data() + pos + 8 + len;
        at[0] = uint8_t(crc >> 24), at[1] = uint8_t(crc >> 16), at[2] = uint8_t(crc >> 8), at[3] = uint8_t(crc);
        pos += 12 + size_t(len);
    }
    if (!dyad::data::check_png(b.data(), b.size()).empty()) return 0;
    const int channels = size % 2 == 0 ? 3 : 1;
    try {
        const dyad::data::Image image = dyad::data::decode_image(b.data(), b.size(), channels);
        if (image.c != channels || image.h < 1 || image.w < 1 ||
            image.pixels.size() != size_t(image.h) * size_t(image.w) * size_t(channels)) {
            dyad::fuzz::fail("decode_image returned an image whose pixels do not match its size");
        }
        // The resizer on whatever size the file had (7: odd, and smaller than most inputs, larger than some).
        const dyad::data::Image small = dyad::data::resize_and_crop(image, 7);
        if (small.h != 7 || small.w != 7 || small.pixels.size() != size_t(7 * 7 * channels))
            dyad::fuzz::fail("resize_and_crop returned an image of another size");
    } catch (const dyad::Error&) {
    }
    return 0;
}
