// Fuzz target: the JPEG structural check, and the decoder behind it for files that pass the check: to 3
// channels, or to 1 for inputs of odd size (one decode per input keeps the target fast; mutations flip the
// parity all the time). A rejected file is fine; a decoded image must have the size it claims.
#include <cstddef>
#include <cstdint>
#include <string>

#include "dyad/data.h"
#include "dyad/error.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (!dyad::data::check_jpeg(data, size).empty()) return 0;
    const int channels = size % 2 == 0 ? 3 : 1;
    try {
        const dyad::data::Image image = dyad::data::decode_jpeg(data, size, channels);
        if (image.c != channels || image.h < 1 || image.w < 1 ||
            image.pixels.size() != size_t(image.h) * size_t(image.w) * size_t(channels)) {
            dyad::fuzz::fail("decode_jpeg returned an image whose pixels do not match its size");
        }
    } catch (const dyad::Error&) {
    }
    return 0;
}
