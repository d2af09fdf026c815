// Dataset helpers: head() takes the first n samples as views of the same storage.
#include "dyad/data.h"

namespace dyad::data {

Dataset Dataset::head(int64_t n) const {
    if (!images.defined() || n <= 0 || n >= size()) return *this;
    DYAD_CHECK(labels.defined() && labels.dim() == 1 && labels.size(0) == size(), "Dataset::head: ", size(),
               " images but labels ", labels.defined() ? shape_str(labels.shape()) : std::string("undefined"));
    Dataset out;
    out.images = images.slice(0, 0, n);
    out.labels = labels.slice(0, 0, n);
    out.class_ids = class_ids;
    out.class_names = class_names;
    return out;
}

}  // namespace dyad::data
