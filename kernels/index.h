// Index kernels: gather (index_select is a gather with a broadcast index) and top-k selection. gather's
// layout comes in a GatherShape, topk's in a ReduceShape (x contiguous, viewed as (outer, reduce, inner)).
// *_bwd kernels ACCUMULATE into dx (dx += ...). Index types I: int32_t or int64_t.
#pragma once
#include <cstdint>

#include "shapes.h"

namespace dyad {

namespace naive {
// out[p] = x[p with coordinate s.dim replaced by index[p]], out contiguous of s.size. Every index value
// must be in [0, s.x_dim_size) (the caller checks them on the CPU).
template <typename T, typename I>
void gather_fwd(T* out, const T* x, const I* index, const GatherShape& s);
// dx[p with coordinate s.dim replaced by index[p]] += dy[p] for every p in row-major order of p, so
// repeated indices add up in that order. dx is addressed through s.x_stride, dy is contiguous.
template <typename T, typename I>
void gather_bwd(T* dx, const T* dy, const I* index, const GatherShape& s);
// The k first elements of each (o, :, i) row in the order "largest first" (or "smallest first" when not
// largest), ties broken by the lower index; NaN counts as larger than every number (first when largest,
// last otherwise; NaNs among themselves by index). values and indices: (outer, k, inner), 0 <= k <= reduce.
template <typename T>
void topk_fwd(T* values, int64_t* indices, const T* x, const ReduceShape& s, int64_t k, bool largest);
}  // namespace naive

namespace omp {
// Same contracts, float; results equal naive bit for bit (elements are selected and added in the same
// order). gather_bwd runs each column (the positions that differ only along s.dim) on one thread, in
// naive's order.
void gather_fwd(float* out, const float* x, const int32_t* index, const GatherShape& s);
void gather_fwd(float* out, const float* x, const int64_t* index, const GatherShape& s);
void gather_bwd(float* dx, const float* dy, const int32_t* index, const GatherShape& s);
void gather_bwd(float* dx, const float* dy, const int64_t* index, const GatherShape& s);
void topk_fwd(float* values, int64_t* indices, const float* x, const ReduceShape& s, int64_t k, bool largest);
}  // namespace omp

namespace cuda {
// Same contracts, float, on the current dyad stream; results equal naive bit for bit. gather_fwd checks the
// index values: a bad one records a fault (runtime.h; thrown at the next synchronisation, naming the value,
// its offset in the index's memory and x_dim_size) and its output element is NaN. gather_bwd gives each
// column to one thread, which adds in naive's order (no atomics: the same bits every run); bad indices add
// nothing. topk_fwd gives each element a thread that counts the elements ordered before it (stopping at
// k) and writes the element to that rank when it is below k.
void gather_fwd(float* out, const float* x, const int32_t* index, const GatherShape& s);
void gather_fwd(float* out, const float* x, const int64_t* index, const GatherShape& s);
void gather_bwd(float* dx, const float* dy, const int32_t* index, const GatherShape& s);
void gather_bwd(float* dx, const float* dy, const int64_t* index, const GatherShape& s);
void topk_fwd(float* values, int64_t* indices, const float* x, const ReduceShape& s, int64_t k, bool largest);
}  // namespace cuda

}  // namespace dyad
