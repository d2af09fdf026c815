// Index kernels, CUDA (contracts in kernels/index.h). Grid-stride loops. gather_fwd: a thread per output
// element, which checks its index value (a bad one records the first fault and writes NaN). gather_bwd: a
// thread per column (the positions that differ only along dim: the only ones that can add into the same dx
// element), adding in naive's order, so no atomics are needed and every run gives naive's bits; adjacent
// threads take adjacent columns, which are adjacent in memory unless dim is the last dim. topk_fwd: a thread
// per element counts the elements of its row ordered before it, stopping once it reaches k (most elements
// of a row stop early when k is small), and writes itself at that rank when it is below k: the ranks of a
// strict total order are distinct, so each of the k output slots is written exactly once.
#include <cstdint>

#include "../index.h"
#include "context.h"

namespace dyad::cuda {

namespace {

// Offsets of position q in x (without the s.dim coordinate) and in the index, decoding the dims in
// [0, s.ndim) except `skip` (-1: none), innermost first.
__device__ __forceinline__ void decode(const GatherShape& s, int64_t q, int skip, int64_t& x_off, int64_t& index_off) {
    x_off = 0, index_off = 0;
    for (int d = s.ndim - 1; d >= 0; d--) {
        if (d == skip) continue;
        const int64_t c = q % s.size[d];
        q /= s.size[d];
        if (d != s.dim) x_off += c * s.x_stride[d];
        index_off += c * s.index_stride[d];
    }
}

template <typename I>
__global__ void gather_fwd_kernel(float* out, const float* x, const I* index, GatherShape s, int64_t n,
                                  FaultRecord* fault) {
    for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < n; p += int64_t(gridDim.x) * blockDim.x) {
        int64_t x_off, index_off;
        decode(s, p, -1, x_off, index_off);
        const int64_t v = int64_t(index[index_off]);
        if (v < 0 || v >= s.x_dim_size) {
            report_fault(fault, s.index_select ? Fault::index_select_out_of_range : Fault::gather_index_out_of_range, v,
                         index_off, s.x_dim_size);
            out[p] = NAN;
        } else {
            out[p] = x[x_off + v * s.x_stride[s.dim]];
        }
    }
}

template <typename I>
__global__ void gather_bwd_kernel(float* dx, const float* dy, const I* index, GatherShape s, int64_t columns) {
    // dy is contiguous: its strides follow from the sizes.
    int64_t dy_stride[kMaxDims];
    int64_t st = 1;
    for (int d = s.ndim - 1; d >= 0; d--) dy_stride[d] = st, st *= s.size[d];
    const int64_t len = s.size[s.dim];
    for (int64_t col = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; col < columns;
         col += int64_t(gridDim.x) * blockDim.x) {
        int64_t x_off, index_off, dy_off = 0, q = col;
        decode(s, col, s.dim, x_off, index_off);
        for (int d = s.ndim - 1; d >= 0; d--) {
            if (d == s.dim) continue;
            dy_off += q % s.size[d] * dy_stride[d];
            q /= s.size[d];
        }
        for (int64_t j = 0; j < len; j++) {
            const int64_t v = int64_t(index[index_off + j * s.index_stride[s.dim]]);
            if (v < 0 || v >= s.x_dim_size) continue;  // reported by the forward
            float& d = dx[x_off + v * s.x_stride[s.dim]];
            d = __fadd_rn(d, dy[dy_off + j * dy_stride[s.dim]]);
        }
    }
}

// naive's order for topk: larger first (smaller first when not largest), NaN the largest, ties by position.
__device__ __forceinline__ bool before(float va, int64_t ra, float vb, int64_t rb, bool largest) {
    const bool na = isnan(va), nb = isnan(vb);
    if (na || nb) {
        if (na && nb) return ra < rb;
        return largest ? na : nb;
    }
    if (va != vb) return largest ? va > vb : va < vb;
    return ra < rb;
}

__global__ void topk_kernel(float* values, int64_t* indices, const float* x, ReduceShape s, int64_t k, bool largest,
                            int64_t n) {
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t i = e % s.inner, q = e / s.inner, r = q % s.reduce, o = q / s.reduce;
        const float* row = x + o * s.reduce * s.inner + i;  // row[t * s.inner]
        const float v = row[r * s.inner];
        int64_t rank = 0;
        for (int64_t t = 0; t < s.reduce && rank < k; t++) rank += before(row[t * s.inner], t, v, r, largest) ? 1 : 0;
        if (rank < k) {
            const int64_t out = (o * k + rank) * s.inner + i;
            values[out] = v;
            indices[out] = r;
        }
    }
}

template <typename I>
void gather_fwd_impl(float* out, const float* x, const I* index, const GatherShape& s) {
    const int64_t n = s.numel();
    if (n == 0) return;
    gather_fwd_kernel<<<grid_for(n), kBlock, 0, stream()>>>(out, x, index, s, n, fault_record());
    DYAD_CUDA_CHECK_LAUNCH();
}

template <typename I>
void gather_bwd_impl(float* dx, const float* dy, const I* index, const GatherShape& s) {
    const int64_t n = s.numel();
    if (n == 0) return;
    const int64_t columns = n / s.size[s.dim];
    gather_bwd_kernel<<<grid_for(columns), kBlock, 0, stream()>>>(dx, dy, index, s, columns);
    DYAD_CUDA_CHECK_LAUNCH();
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
    const int64_t n = s.outer * s.reduce * s.inner;
    if (n == 0 || k == 0) return;
    topk_kernel<<<grid_for(n), kBlock, 0, stream()>>>(values, indices, x, s, k, largest, n);
    DYAD_CUDA_CHECK_LAUNCH();
}

}  // namespace dyad::cuda
