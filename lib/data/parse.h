// The data readers' file formats parsed from bytes in memory: the readers do the file I/O and call these,
// and so can tests and the fuzz targets (tests/fuzz). Errors are the readers' own messages, naming the file.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "dyad/tensor.h"

namespace dyad::data::detail {

// The contents of an IDX file as read_idx reads it (see include/dyad/data.h): gzip-compressed when the
// bytes start with the gzip magic (1F 8B; several gzip members are read one after the other, and bytes after
// the last member are ignored, as zlib's gzread does), plain otherwise. `path` names the file in errors.
Tensor parse_idx(const uint8_t* bytes, size_t n, const std::string& path);

// Tiny ImageNet's text files, given their whole text and their path (for messages; errors begin with
// "load_tiny_imagenet: '<path>'"). wnids.txt: one wnid per line in label order, blank lines skipped; a wnid
// holds no space, tab or '/', and none is listed twice; at least one is required.
struct Wnids {
    std::vector<std::string> ids;                       // in label order
    std::unordered_map<std::string, int32_t> label_of;  // wnid -> label
};
Wnids parse_wnids(const std::string& text, const std::string& path);

// words.txt: "wnid<TAB>name" lines; the names of the listed wnids in label order, the wnid itself where the
// file has no (non-empty) name. Never fails: lines without a tab and unknown wnids are skipped.
std::vector<std::string> parse_words(const std::string& text, const Wnids& wnids);

// val/val_annotations.txt: "file<TAB>wnid[<TAB>x0<TAB>y0<TAB>x1<TAB>y1]" lines, blank lines skipped; the file
// is a plain name (no '/'), listed once; the wnid must be in `wnids` (read from `wnids_path`); box fields
// must be integers. The entries in file order.
struct ValEntry {
    std::string file;  // a name inside val/images
    int32_t label = 0;
};
std::vector<ValEntry> parse_val_annotations(const std::string& text, const std::string& path, const Wnids& wnids,
                                            const std::string& wnids_path);

}  // namespace dyad::data::detail
