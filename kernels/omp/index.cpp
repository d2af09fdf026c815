// Index kernels, OpenMP. Twins of naive/index.cpp with the same contracts (kernels/index.h); results equal
// naive's bit for bit. Differences: gather_fwd decodes coordinates once per row of the last dim instead of
// once per element, and rows run in parallel; gather_bwd runs each column (the positions that differ only
// along s.dim, which are the only ones that can add into the same dx element) on one thread, in naive's
// order; topk_fwd sorts rows in parallel with naive's comparison (a strict total order, so the same result).
#include "../index.h"

#include <algorithm>
#include <vector>

namespace dyad::omp {

namespace {

// Below this many elements one thread does the work (the thread start-up costs more).
constexpr int64_t kParallelOver = 1 << 15;

// Offsets, in x (without the s.dim coordinate) and in the index, of the position whose coordinates are the
// row-major decoding of q over the dims in [0, end) except `skip` (which counts as coordinate 0).
void decode(const GatherShape& s, int64_t q, int end, int skip, int64_t& x_off, int64_t& index_off) {
    x_off = 0, index_off = 0;
    for (int d = end - 1; d >= 0; d--) {
        if (d == skip) continue;
        const int64_t c = q % s.size[d];
        q /= s.size[d];
        if (d != s.dim) x_off += c * s.x_stride[d];
        index_off += c * s.index_stride[d];
    }
}

template <typename I>
void gather_fwd_impl(float* out, const float* x, const I* index, const GatherShape& s) {
    const int64_t n = s.numel();
    if (n == 0) return;
    const int last = s.ndim - 1;
    const int64_t len = s.size[last], rows = n / len;
    const int64_t xs_last = last == s.dim ? 0 : s.x_stride[last], is_last = s.index_stride[last];
    const int64_t xs_dim = s.x_stride[s.dim];
#pragma omp parallel for schedule(static) if (n >= kParallelOver)
    for (int64_t r = 0; r < rows; r++) {
        int64_t x_off, index_off;
        decode(s, r, last, -1, x_off, index_off);
        float* o = out + r * len;
        for (int64_t j = 0; j < len; j++)
            o[j] = x[x_off + j * xs_last + int64_t(index[index_off + j * is_last]) * xs_dim];
    }
}

template <typename I>
void gather_bwd_impl(float* dx, const float* dy, const I* index, const GatherShape& s) {
    const int64_t n = s.numel();
    if (n == 0) return;
    // dy is contiguous: its stride along s.dim, and the columns (every position with coordinate 0 along dim).
    int64_t dy_stride[kMaxDims], st = 1;
    for (int d = s.ndim - 1; d >= 0; d--) dy_stride[d] = st, st *= s.size[d];
    const int64_t len = s.size[s.dim], columns = n / len;
    const int64_t xs_dim = s.x_stride[s.dim], is_dim = s.index_stride[s.dim], ds_dim = dy_stride[s.dim];
#pragma omp parallel for schedule(static) if (n >= kParallelOver)
    for (int64_t col = 0; col < columns; col++) {
        int64_t x_off, index_off, dy_off = 0, q = col;
        decode(s, col, s.ndim, s.dim, x_off, index_off);
        for (int d = s.ndim - 1; d >= 0; d--) {
            if (d == s.dim) continue;
            dy_off += q % s.size[d] * dy_stride[d];
            q /= s.size[d];
        }
        for (int64_t j = 0; j < len; j++)
            dx[x_off + int64_t(index[index_off + j * is_dim]) * xs_dim] += dy[dy_off + j * ds_dim];
    }
}

// naive's order for topk (a strict total order: larger first, or smaller first; NaN the largest; ties by
// the lower position).
bool before(float va, int64_t ra, float vb, int64_t rb, bool largest) {
    const bool na = va != va, nb = vb != vb;
    if (na || nb) {
        if (na && nb) return ra < rb;
        return largest ? na : nb;
    }
    if (va != vb) return largest ? va > vb : va < vb;
    return ra < rb;
}

}  // namespace

void gather_fwd(float* out, const float* x, const int32_t* index, const GatherShape& s) {
    gather_fwd_impl(out, x, index, s);
}
void gather_fwd(float* out, const float* x, const int64_t* index, const GatherShape& s) {
    gather_fwd_impl(out, x, index, s);
}
void gather_bwd(float* dx, const float* dy, const int32_t* index, const GatherShape& s) {
    gather_bwd_impl(dx, dy, index, s);
}
void gather_bwd(float* dx, const float* dy, const int64_t* index, const GatherShape& s) {
    gather_bwd_impl(dx, dy, index, s);
}

void topk_fwd(float* values, int64_t* indices, const float* x, const ReduceShape& s, int64_t k, bool largest) {
    const int64_t rows = s.outer * s.inner;
    if (rows == 0 || k == 0) return;
#pragma omp parallel if (rows * s.reduce >= kParallelOver)
    {
        std::vector<int64_t> order(static_cast<size_t>(s.reduce));
#pragma omp for schedule(static)
        for (int64_t oi = 0; oi < rows; oi++) {
            const int64_t o = oi / s.inner, i = oi % s.inner;
            const float* row = x + o * s.reduce * s.inner + i;  // row[r * s.inner]
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
}

}  // namespace dyad::omp
