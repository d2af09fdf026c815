// POD shape structs passed to every kernel. Kernels take raw pointers plus one of these; they never see a
// Tensor. Sizes and strides are in elements.
#pragma once
#include <cstdint>

// Marks small inline helpers that kernels on every device share (CUDA device code included).
#ifdef __CUDACC__
#define DYAD_HOST_DEVICE __host__ __device__
#else
#define DYAD_HOST_DEVICE
#endif

namespace dyad {

constexpr int kMaxDims = 8;

// An elementwise iteration space of up to kMaxDims dims over up to three operands. operand 0 is the
// output; 1 and 2 are inputs. A stride of 0 broadcasts. The frontend merges dims that are contiguous in
// every operand, so the common case arrives as ndim == 1 with unit strides.
struct StridedShape {
    int ndim = 0;
    int64_t size[kMaxDims] = {};
    int64_t stride[3][kMaxDims] = {};

    DYAD_HOST_DEVICE int64_t numel() const {
        int64_t n = 1;
        for (int d = 0; d < ndim; d++) n *= size[d];
        return n;
    }
    // True when operand `op` walks memory with unit stride over the whole space.
    DYAD_HOST_DEVICE bool contiguous(int op) const {
        int64_t expect = 1;
        for (int d = ndim - 1; d >= 0; d--) {
            if (size[d] != 1 && stride[op][d] != expect) return false;
            expect *= size[d];
        }
        return true;
    }
    // Element offset of flat (row-major) index i for operand op.
    DYAD_HOST_DEVICE int64_t offset(int op, int64_t i) const {
        int64_t off = 0;
        for (int d = ndim - 1; d >= 0; d--) {
            off += (i % size[d]) * stride[op][d];
            i /= size[d];
        }
        return off;
    }
};

// A reduction: x is contiguous and viewed as (outer, reduce, inner); the result is (outer, inner).
struct ReduceShape {
    int64_t outer = 1, reduce = 1, inner = 1;
};

// gather along `dim`: the output has the index's shape (size, row-major, contiguous), and for every output
// position p, out[p] = x[p with coordinate dim replaced by index[p]]. x (or, in backward, dx) and the index
// are read through their own strides, in elements (an index stride of 0 broadcasts: index_select expands a
// 1-D index this way). Valid index values are [0, x_dim_size).
struct GatherShape {
    int ndim = 0;
    int dim = 0;
    int64_t size[kMaxDims] = {};
    int64_t x_stride[kMaxDims] = {};
    int64_t index_stride[kMaxDims] = {};
    int64_t x_dim_size = 0;
    bool index_select = false;  // which op a bad index found on a GPU is reported for (gather otherwise)

    DYAD_HOST_DEVICE int64_t numel() const {
        int64_t n = 1;
        for (int d = 0; d < ndim; d++) n *= size[d];
        return n;
    }
};

// Batched row-major GEMM: C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b] for b in [0, batch).
// op(A) is (m, k): A is stored (m, k) with row stride lda, or (k, m) when trans_a. op(B) is (k, n): B is
// stored (k, n) with row stride ldb, or (n, k) when trans_b. C is (m, n) with row stride ldc.
// Batch strides may be 0 (an operand shared by every batch). stride_c == 0 is allowed with beta == 1: the
// batches then accumulate into one C, in order.
struct GemmShape {
    int64_t batch = 1, m = 0, n = 0, k = 0;
    bool trans_a = false, trans_b = false;
    int64_t lda = 0, ldb = 0, ldc = 0;
    int64_t stride_a = 0, stride_b = 0, stride_c = 0;
};

}  // namespace dyad
