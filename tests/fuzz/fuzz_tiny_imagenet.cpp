// Fuzz target: Tiny ImageNet's text parsers. The input holds wnids.txt, words.txt and val_annotations.txt
// separated by kTextSeparator; the words and annotations are parsed against the wnids when those parse.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "dyad/error.h"
#include "fuzz_util.h"
#include "lib/data/parse.h"

namespace detail = dyad::data::detail;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::vector<std::string> texts = dyad::fuzz::split_texts(data, size, 3);
    detail::Wnids wnids;
    try {
        wnids = detail::parse_wnids(texts[0], "root/wnids.txt");
    } catch (const dyad::Error&) {
        return 0;
    }
    if (wnids.ids.empty() || wnids.ids.size() != wnids.label_of.size())
        dyad::fuzz::fail("parse_wnids returned an empty or inconsistent list");
    const std::vector<std::string> names = detail::parse_words(texts[1], wnids);
    if (names.size() != wnids.ids.size()) dyad::fuzz::fail("parse_words returned the wrong number of names");
    try {
        const std::vector<detail::ValEntry> val =
            detail::parse_val_annotations(texts[2], "root/val/val_annotations.txt", wnids, "root/wnids.txt");
        for (const detail::ValEntry& e : val) {
            if (e.label < 0 || size_t(e.label) >= wnids.ids.size() || e.file.empty() ||
                e.file.find('/') != std::string::npos)
                dyad::fuzz::fail("parse_val_annotations returned an entry it should have rejected");
        }
    } catch (const dyad::Error&) {
    }
    return 0;
}
