// Fuzz target: the IDX reader's parser (read_idx without the file I/O), on plain bytes and, when the input
// starts with the gzip magic, on gzip'd ones. A rejected file is fine; an accepted one must hold labels or
// images of uint8.
#include <cstddef>
#include <cstdint>

#include "dyad/error.h"
#include "dyad/tensor.h"
#include "fuzz_util.h"
#include "lib/data/parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const dyad::Tensor t = dyad::data::detail::parse_idx(data, size, "fuzz.idx");
        if (t.dtype() != dyad::DType::uint8 || (t.dim() != 1 && t.dim() != 3))
            dyad::fuzz::fail("parse_idx returned a tensor that is not uint8 with 1 or 3 dimensions");
    } catch (const dyad::Error&) {
    }
    return 0;
}
