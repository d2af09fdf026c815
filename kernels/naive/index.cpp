// Index kernels, naive: one loop over the output positions, coordinates decoded per element. The spec.
#include "../index.h"

#include <algorithm>
#include <vector>

namespace dyad::naive {

namespace {

// Offsets of output position p (row-major over s.size) in x (without the s.dim coordinate, which comes
// from the index) and in the index.
void gather_offsets(const GatherShape& s, int64_t p, int64_t& x_off, int64_t& index_off) {
    x_off = 0, index_off = 0;
    for (int d = s.ndim - 1; d >= 0; d--) {
        const int64_t c = p % s.size[d];
        p /= s.size[d];
        if (d != s.dim) x_off += c * s.x_stride[d];
        index_off += c * s.index_stride[d];
    }
}

// a (value va at position ra) comes before b in topk's order: larger first (smaller first when not
// largest), NaN larger than every number, ties by the lower position.
template <typename T>
bool before(T va, int64_t ra, T vb, int64_t rb, bool largest) {
    const bool na = va != va, nb = vb != vb;
    if (na || nb) {
        if (na && nb) return ra < rb;
        return largest ? na : nb;
    }
    if (va != vb) return largest ? va > vb : va < vb;
    return ra < rb;
}

}  // namespace

template <typename T, typename I>
void gather_fwd(T* out, const T* x, const I* index, const GatherShape& s) {
    for (int64_t p = 0, n = s.numel(); p < n; p++) {
        int64_t x_off, index_off;
        gather_offsets(s, p, x_off, index_off);
        out[p] = x[x_off + int64_t(index[index_off]) * s.x_stride[s.dim]];
    }
}

template <typename T, typename I>
void gather_bwd(T* dx, const T* dy, const I* index, const GatherShape& s) {
    for (int64_t p = 0, n = s.numel(); p < n; p++) {
        int64_t x_off, index_off;
        gather_offsets(s, p, x_off, index_off);
        dx[x_off + int64_t(index[index_off]) * s.x_stride[s.dim]] += dy[p];
    }
}

template <typename T>
void topk_fwd(T* values, int64_t* indices, const T* x, const ReduceShape& s, int64_t k, bool largest) {
    std::vector<int64_t> order(static_cast<size_t>(s.reduce));
    for (int64_t o = 0; o < s.outer; o++)
        for (int64_t i = 0; i < s.inner; i++) {
            const T* row = x + o * s.reduce * s.inner + i;  // row[r * s.inner]
            for (int64_t r = 0; r < s.reduce; r++) order[size_t(r)] = r;
            std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int64_t a, int64_t b) {
                return before(row[a * s.inner], a, row[b * s.inner], b, largest);
            });
            for (int64_t j = 0; j < k; j++) {
                const int64_t out = (o * k + j) * s.inner + i;
                values[out] = row[order[size_t(j)] * s.inner];
                indices[out] = order[size_t(j)];
            }
        }
}

#define DYAD_INSTANTIATE(T)                                                                 \
    template void gather_fwd<T, int32_t>(T*, const T*, const int32_t*, const GatherShape&); \
    template void gather_fwd<T, int64_t>(T*, const T*, const int64_t*, const GatherShape&); \
    template void gather_bwd<T, int32_t>(T*, const T*, const int32_t*, const GatherShape&); \
    template void gather_bwd<T, int64_t>(T*, const T*, const int64_t*, const GatherShape&); \
    template void topk_fwd<T>(T*, int64_t*, const T*, const ReduceShape&, int64_t, bool);
DYAD_INSTANTIATE(float)
DYAD_INSTANTIATE(double)

}  // namespace dyad::naive
