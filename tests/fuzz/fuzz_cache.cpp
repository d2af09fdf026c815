// Fuzz target: the data-set cache reader (read_cache), through a scratch file. The fingerprint is the one
// the seed corpus was written with, so mutations reach the shapes, class lists and data. read_cache never
// throws for a bad file: it returns false with a reason; when it returns true, the split must be whole.
#include <cstddef>
#include <cstdint>
#include <string>

#include "dyad/data.h"
#include "fuzz_util.h"

namespace {

void check_set(const dyad::data::Dataset& d) {
    if (!d.images.defined()) {
        if (d.labels.defined()) dyad::fuzz::fail("read_cache: labels without images");
        return;
    }
    if (d.images.dtype() != dyad::DType::uint8 || d.images.dim() != 4 || !d.labels.defined() ||
        d.labels.dtype() != dyad::DType::int32 || d.labels.dim() != 1 || d.labels.size(0) != d.images.size(0))
        dyad::fuzz::fail("read_cache: a data set with inconsistent images and labels");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const dyad::fuzz::ScratchFile file("cache.bin");
    file.write(data, size);
    dyad::data::Split split;
    std::string why;
    if (dyad::data::read_cache(file.path(), dyad::fuzz::kCacheFingerprint, &split, &why)) {
        if (!why.empty()) dyad::fuzz::fail("read_cache returned true with a reason");
        check_set(split.train);
        check_set(split.val);
    } else if (why.empty()) {
        dyad::fuzz::fail("read_cache returned false without a reason");
    }
    return 0;
}
