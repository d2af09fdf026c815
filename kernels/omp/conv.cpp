// 2-D convolution, OpenMP. Twin of kernels/naive/conv.cpp; differs in summation order only.
//
// Each image is lowered to GEMMs (im2col): its input windows are copied into a column matrix col with
// one row per filter tap (c, r, t) and one column per output position (p, q), so that
//   forward          y[n] (K x PQ)   = W (K x CRS) * col (CRS x PQ) + bias (as one more column of W
//                                      against a row of ones in col)
//   backward data    dcol (CRS x PQ) = W^T * dy[n], then col2im adds dcol back into dx[n]
//   backward filter  dW   (K x CRS) += dy[n] * col^T, and dbias += the row sums of dy[n]
// and omp::gemm does the arithmetic. A 1x1 convolution with stride 1 and no padding needs no copy: col
// is the image itself. The output positions are taken in chunks of whole output rows, sized so that a
// chunk's col is still in L2 when the GEMM packs it. channels_last (NHWC) operands lower the transposed
// way, one col row per output position (see im2col_nhwc below), with the same chunks and threads.
//
// The 3x3 stride-1 convolutions that winograd_tile assigns to Winograd (kernels/omp/winograd.cpp) run it
// in either layout. Its transforms read and write NCHW planes, so a channels_last one transposes its
// operands into NCHW scratch, runs the NCHW Winograd pass on them and transposes the result back (see
// "channels last on Winograd" below): the same code on the same values, so the same bits as the NCHW
// convolution of the same tensors.
//
// Threads take whole images, each with its own col buffer (and in backward filter its own partial dW
// and dbias, summed in thread order at the end, so the result does not depend on scheduling);
// omp::gemm runs single-threaded inside them. With fewer images than threads (or a batch that does not
// split evenly and is small), the images run one after another and the GEMM splits each one instead.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

#include "../conv.h"
#include "../gemm.h"
#include "workspace.h"
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__SSE__)
#include <xmmintrin.h>  // 4 x 4 register transposes (baseline on x86-64)
#endif

namespace dyad::omp {

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

int thread_index() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

// Floats of col per chunk: 64 Ki floats (256 KiB) stay in a 512 KiB L2 next to the GEMM's packed A.
constexpr int64_t kChunkFloats = int64_t(1) << 16;
// But at least this many columns per filter: every chunk's GEMM packs the whole weight again (K x CRS
// values, against CRS per column of col), so narrower chunks would pack more weight than col.
constexpr int64_t kMinColumnsPerFilter = 4;

// How one call lowers its images and spreads them over threads.
struct Plan {
    int64_t crs = 0, pq = 0;
    bool direct = false;     // 1x1, stride 1, no padding: col is the image itself
    bool by_image = false;   // threads take whole images; otherwise the GEMM is threaded
    int threads = 1;         // workers that need their own buffers (1 unless by_image)
    int64_t rows = 0;        // output rows per chunk
    int64_t col_floats = 0;  // per worker, with room for one more row (forward's row of ones)
};

Plan make_plan(const Conv2dShape& s) {
    Plan pl;
    pl.crs = s.c * s.r * s.s;
    pl.pq = s.p * s.q;
    pl.direct = s.r == 1 && s.s == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 0 && s.pad_w == 0;
    int available = 1;
#ifdef _OPENMP
    if (!omp_in_parallel()) available = omp_get_max_threads();
#endif
    // Whole images per thread when they divide evenly, or when there are enough of them that the last
    // round's imbalance is small (the same rule as omp::gemm's batches).
    pl.by_image = available > 1 && s.n >= available && (s.n % available == 0 || s.n >= 4 * available);
    pl.threads = pl.by_image ? available : 1;
    if (pl.direct) {
        pl.rows = s.p;
    } else if (pl.by_image || available == 1) {
        // Equal chunks of whole rows, each near kChunkFloats of col (or kMinColumnsPerFilter * K columns).
        const int64_t fit = std::max(
            {int64_t(1), kChunkFloats / std::max<int64_t>(1, pl.crs * s.q), ceil_div(kMinColumnsPerFilter * s.k, s.q)});
        pl.rows = ceil_div(s.p, ceil_div(s.p, fit));
    } else {
        pl.rows = s.p;  // the threaded GEMM gets the whole image: more columns to split
    }
    pl.col_floats = pl.direct ? 0 : round_up((pl.crs + 1) * pl.rows * s.q, 16);
    return pl;
}

// Calls body(image, worker) for every image: in parallel (static schedule: worker t takes a fixed run of
// images, in order) or one after another with worker 0.
template <class Body>
void for_each_image(const Plan& pl, int64_t n, const Body& body) {
    if (!pl.by_image) {
        for (int64_t i = 0; i < n; i++) body(i, 0);
        return;
    }
#pragma omp parallel for num_threads(pl.threads) schedule(static)
    for (int64_t i = 0; i < n; i++) body(i, thread_index());
}

// The outputs o in [0, outputs) whose input o * stride - pad + tap lies inside [0, inputs): [lo, hi).
void valid_range(int64_t outputs, int64_t inputs, int64_t stride, int64_t pad, int64_t tap, int64_t& lo, int64_t& hi) {
    const int64_t first = pad - tap;              // o * stride >= first
    const int64_t last = inputs - 1 + pad - tap;  // o * stride <= last
    hi = last >= 0 ? std::min(outputs, last / stride + 1) : 0;
    lo = std::min(first > 0 ? ceil_div(first, stride) : 0, hi);
}

// col[(c * R + r) * S + t][(p - p0) * Q + q] = x[c][p * stride_h - pad_h + r][q * stride_w - pad_w + t]
// (0 in the padding) for output rows p in [p0, p1); x is one image (C, H, W).
void im2col(const Conv2dShape& s, const float* x, float* col, int64_t p0, int64_t p1) {
    // With unit strides and as many output as input columns (a "same" convolution), the valid part of
    // a tap's rows is one run of x: copy it at once, then clear the padding columns it overran.
    const bool one_run = s.stride_h == 1 && s.stride_w == 1 && s.w == s.q;
    for (int64_t c = 0; c < s.c; c++)
        for (int64_t r = 0; r < s.r; r++) {
            int64_t pa, pb;  // rows of [p0, p1) inside the image
            valid_range(s.p, s.h, s.stride_h, s.pad_h, r, pa, pb);
            pa = std::clamp(pa, p0, p1), pb = std::clamp(pb, pa, p1);
            for (int64_t t = 0; t < s.s; t++) {
                int64_t lo, hi;  // columns inside the image
                valid_range(s.q, s.w, s.stride_w, s.pad_w, t, lo, hi);
                const int64_t shift = t - s.pad_w;  // input column = q * stride_w + shift
                float* dst = col + ((c * s.r + r) * s.s + t) * (p1 - p0) * s.q;
                if (pa == pb || lo == hi) {  // the tap sees only padding in these rows
                    std::fill(dst, dst + (p1 - p0) * s.q, 0.0f);
                    continue;
                }
                std::fill(dst, dst + (pa - p0) * s.q, 0.0f);
                std::fill(dst + (pb - p0) * s.q, dst + (p1 - p0) * s.q, 0.0f);
                const float* row = x + (c * s.h + pa * s.stride_h - s.pad_h + r) * s.w;  // of output row pa
                float* out = dst + (pa - p0) * s.q;
                if (one_run) {
                    std::memcpy(out + lo, row + lo + shift, size_t((pb - pa - 1) * s.q + hi - lo) * sizeof(float));
                    for (int64_t p = pa; p < pb; p++, out += s.q) {
                        std::fill(out, out + lo, 0.0f);
                        std::fill(out + hi, out + s.q, 0.0f);
                    }
                    continue;
                }
                for (int64_t p = pa; p < pb; p++, out += s.q, row += s.stride_h * s.w) {
                    std::fill(out, out + lo, 0.0f);
                    if (s.stride_w == 1) {
                        std::memcpy(out + lo, row + lo + shift, size_t(hi - lo) * sizeof(float));
                    } else {
                        for (int64_t q = lo; q < hi; q++) out[q] = row[q * s.stride_w + shift];
                    }
                    std::fill(out + hi, out + s.q, 0.0f);
                }
            }
        }
}

// The adjoint of im2col: x[c][ih][iw] += col[...] for every entry of rows [p0, p1) that im2col would
// have read from x (padding entries are dropped).
void col2im(const Conv2dShape& s, const float* col, float* x, int64_t p0, int64_t p1) {
    for (int64_t c = 0; c < s.c; c++)
        for (int64_t r = 0; r < s.r; r++) {
            int64_t pa, pb;
            valid_range(s.p, s.h, s.stride_h, s.pad_h, r, pa, pb);
            pa = std::clamp(pa, p0, p1), pb = std::clamp(pb, pa, p1);
            for (int64_t t = 0; t < s.s; t++) {
                int64_t lo, hi;
                valid_range(s.q, s.w, s.stride_w, s.pad_w, t, lo, hi);
                if (pa == pb || lo == hi) continue;
                const int64_t shift = t - s.pad_w;
                const float* in = col + ((c * s.r + r) * s.s + t) * (p1 - p0) * s.q + (pa - p0) * s.q;
                float* row = x + (c * s.h + pa * s.stride_h - s.pad_h + r) * s.w;
                for (int64_t p = pa; p < pb; p++, in += s.q, row += s.stride_h * s.w) {
                    if (s.stride_w == 1) {
                        float* out = row + lo + shift;
                        for (int64_t i = 0; i < hi - lo; i++) out[i] += in[lo + i];
                    } else {
                        for (int64_t q = lo; q < hi; q++) row[q * s.stride_w + shift] += in[q];
                    }
                }
            }
        }
}

// Backward filter's frame, the same in both layouts: per worker a col buffer and (when threads take whole
// images) a partial dW, zeroed; per_image(plan, n, col, dw, dbias_row) adds image n's dW into dw and its
// bias gradient into dbias_row (null without dbias); then the partial dWs are added into dweight and the
// per-worker bias sums (doubles) into dbias, both in worker order, so the result does not depend on
// scheduling.
template <typename PerImage>
void bwd_filter_by_worker(const Conv2dShape& s, float* dweight, float* dbias, PerImage per_image) {
    const Plan pl = make_plan(s);
    const int64_t dw_floats = s.k * pl.crs;
    const int64_t partial = pl.by_image ? round_up(dw_floats, 16) : 0;
    const int64_t per_worker = pl.col_floats + partial;
    thread_local Workspace workspace;
    float* buf = workspace.get(std::max<int64_t>(pl.threads * per_worker, 1));
    std::vector<double> dbias_sum(dbias ? size_t(pl.threads * s.k) : 0, 0.0);
    if (pl.by_image)
        for (int t = 0; t < pl.threads; t++) std::fill_n(buf + t * per_worker + pl.col_floats, dw_floats, 0.0f);

    for_each_image(pl, s.n, [&](int64_t n, int worker) {
        float* col = buf + worker * per_worker;
        per_image(pl, n, col, pl.by_image ? col + pl.col_floats : dweight,
                  dbias ? dbias_sum.data() + size_t(worker) * size_t(s.k) : nullptr);
    });

    if (pl.by_image) {  // dW += the workers' partial sums, added in worker order
#pragma omp parallel for num_threads(pl.threads) schedule(static)
        for (int64_t i = 0; i < dw_floats; i++) {
            float acc = 0.0f;
            for (int t = 0; t < pl.threads; t++) acc += buf[t * per_worker + pl.col_floats + i];
            dweight[i] += acc;
        }
    }
    if (dbias)
        for (int64_t k = 0; k < s.k; k++) {
            double acc = 0;
            for (int t = 0; t < pl.threads; t++) acc += dbias_sum[size_t(t * s.k + k)];
            dbias[k] += float(acc);
        }
}

// ---------------------------------------------------------------------------- channels last (NHWC)
// With x (H, W, C) per image, the taps of one output position (p, q) are R runs of S * C contiguous
// values (one per filter row, each cut where it leaves the image), in the order of a KRSC weight's rows.
// So NHWC lowers the other way round: col holds one row per output position and one column per tap
// (r, t, c), and the image's outputs come out already in NHWC order:
//   forward          y[n] (PQ x K)   = col (PQ x RSC) * W^T (W is K x RSC), on y prefilled with the bias
//   backward data    dcol (PQ x RSC) = dy[n] (PQ x K) * W, then col2im_nhwc adds dcol back into dx[n]
//   backward filter  dW (K x RSC)   += dy[n]^T * col, and dbias += the column sums of dy[n]
// A 1x1 convolution with stride 1 and no padding again needs no copy: x[n] is the (HW x C) col.

// col[(p - p0) * Q + q][(r * S + t) * C + c] = x[p * stride_h - pad_h + r][q * stride_w - pad_w + t][c]
// (0 in the padding) for output rows p in [p0, p1); x is one image (H, W, C).
void im2col_nhwc(const Conv2dShape& s, const float* x, float* col, int64_t p0, int64_t p1) {
    const int64_t sc = s.s * s.c, rsc = s.r * sc;
    for (int64_t p = p0; p < p1; p++)
        for (int64_t q = 0; q < s.q; q++) {
            float* dst = col + ((p - p0) * s.q + q) * rsc;
            const int64_t iw0 = q * s.stride_w - s.pad_w;  // input column of tap t = 0
            // Taps [t0, t1) land inside the image's width; an empty range when the window misses it.
            const int64_t t0 = std::min(std::max<int64_t>(0, -iw0), s.s);
            const int64_t t1 = std::max(t0, std::min(s.s, s.w - iw0));
            for (int64_t r = 0; r < s.r; r++, dst += sc) {
                const int64_t ih = p * s.stride_h - s.pad_h + r;
                if (ih < 0 || ih >= s.h || t0 == t1) {
                    std::fill(dst, dst + sc, 0.0f);
                    continue;
                }
                std::fill(dst, dst + t0 * s.c, 0.0f);
                if (s.c > 0)  // (no input channels: x may be null, and memcpy must not see it)
                    std::memcpy(dst + t0 * s.c, x + (ih * s.w + iw0 + t0) * s.c,
                                size_t((t1 - t0) * s.c) * sizeof(float));
                std::fill(dst + t1 * s.c, dst + sc, 0.0f);
            }
        }
}

// The adjoint of im2col_nhwc: x[ih][iw][c] += col[...] for every entry of rows [p0, p1) that
// im2col_nhwc would have read from x (padding entries are dropped).
void col2im_nhwc(const Conv2dShape& s, const float* col, float* x, int64_t p0, int64_t p1) {
    const int64_t sc = s.s * s.c, rsc = s.r * sc;
    for (int64_t p = p0; p < p1; p++)
        for (int64_t q = 0; q < s.q; q++) {
            const float* src = col + ((p - p0) * s.q + q) * rsc;
            const int64_t iw0 = q * s.stride_w - s.pad_w;
            const int64_t t0 = std::min(std::max<int64_t>(0, -iw0), s.s);
            const int64_t t1 = std::max(t0, std::min(s.s, s.w - iw0));
            if (t0 == t1) continue;
            for (int64_t r = 0; r < s.r; r++, src += sc) {
                const int64_t ih = p * s.stride_h - s.pad_h + r;
                if (ih < 0 || ih >= s.h) continue;
                const float* in = src + t0 * s.c;
                float* out = x + (ih * s.w + iw0 + t0) * s.c;
                const int64_t len = (t1 - t0) * s.c;
                for (int64_t i = 0; i < len; i++) out[i] += in[i];
            }
        }
}

// sum[k] += dy[i][k] over the rows i of one image's (rows x K) gradient, in double (rows of a vector
// width, vectorisable, in a fixed order).
void column_sums(const float* dy, int64_t rows, int64_t k, double* sum) {
    for (int64_t i = 0; i < rows; i++, dy += k)
        for (int64_t j = 0; j < k; j++) sum[j] += double(dy[j]);
}

void conv2d_fwd_nhwc(const Conv2dShape& s, float* y, const float* x, const float* weight, const float* bias) {
    const Plan pl = make_plan(s);
    thread_local Workspace workspace;
    float* buf = workspace.get(std::max<int64_t>(pl.threads * pl.col_floats, 1));
    for_each_image(pl, s.n, [&](int64_t n, int worker) {
        const float* xn = x + n * s.h * s.w * s.c;
        float* yn = y + n * pl.pq * s.k;
        float* col = buf + worker * pl.col_floats;
        for (int64_t p0 = 0; p0 < s.p; p0 += pl.rows) {
            const int64_t p1 = std::min(p0 + pl.rows, s.p), rows = (p1 - p0) * s.q;
            float* out = yn + p0 * s.q * s.k;
            // The bias as the GEMM's starting C: one k-vector per output position, no extra pass over y.
            if (bias)
                for (int64_t i = 0; i < rows; i++) std::copy(bias, bias + s.k, out + i * s.k);
            GemmShape g;  // y[n][chunk] (rows x K) = col (rows x RSC) * W^T (RSC x K, W read transposed)
            g.m = rows, g.n = s.k, g.k = pl.crs;
            g.trans_b = true, g.lda = pl.crs, g.ldb = pl.crs, g.ldc = s.k;
            const float* a = col;
            if (pl.direct) {
                a = xn + p0 * s.q * s.c;
            } else {
                im2col_nhwc(s, xn, col, p0, p1);
            }
            gemm(g, 1.0f, a, weight, bias ? 1.0f : 0.0f, out);
        }
    });
}

void conv2d_bwd_data_nhwc(const Conv2dShape& s, float* dx, const float* dy, const float* weight) {
    const Plan pl = make_plan(s);
    thread_local Workspace workspace;
    float* buf = workspace.get(std::max<int64_t>(pl.threads * pl.col_floats, 1));
    for_each_image(pl, s.n, [&](int64_t n, int worker) {
        const float* dyn = dy + n * pl.pq * s.k;
        float* dxn = dx + n * s.h * s.w * s.c;
        float* dcol = buf + worker * pl.col_floats;
        for (int64_t p0 = 0; p0 < s.p; p0 += pl.rows) {
            const int64_t p1 = std::min(p0 + pl.rows, s.p), rows = (p1 - p0) * s.q;
            GemmShape g;  // dcol (rows x RSC) = dy[n][chunk] (rows x K) * W (K x RSC)
            g.m = rows, g.n = pl.crs, g.k = s.k;
            g.lda = s.k, g.ldb = pl.crs, g.ldc = pl.crs;
            if (pl.direct) {  // dcol is dx[n] itself: accumulate in place
                gemm(g, 1.0f, dyn + p0 * s.q * s.k, weight, 1.0f, dxn + p0 * s.q * s.c);
            } else {
                gemm(g, 1.0f, dyn + p0 * s.q * s.k, weight, 0.0f, dcol);
                col2im_nhwc(s, dcol, dxn, p0, p1);
            }
        }
    });
}

void conv2d_bwd_filter_nhwc(const Conv2dShape& s, float* dweight, float* dbias, const float* dy, const float* x) {
    bwd_filter_by_worker(s, dweight, dbias, [&](const Plan& pl, int64_t n, float* col, float* dw, double* dbias_row) {
        const float* dyn = dy + n * pl.pq * s.k;
        const float* xn = x + n * s.h * s.w * s.c;
        for (int64_t p0 = 0; p0 < s.p; p0 += pl.rows) {
            const int64_t p1 = std::min(p0 + pl.rows, s.p), rows = (p1 - p0) * s.q;
            GemmShape g;  // dW (K x RSC) += dy[n][chunk]^T (K x rows, dy read transposed) * col (rows x RSC)
            g.m = s.k, g.n = pl.crs, g.k = rows;
            g.trans_a = true, g.lda = s.k, g.ldb = pl.crs, g.ldc = pl.crs;
            const float* bm = col;
            if (pl.direct) {
                bm = xn + p0 * s.q * s.c;
            } else {
                im2col_nhwc(s, xn, col, p0, p1);
            }
            gemm(g, 1.0f, dyn + p0 * s.q * s.k, bm, 1.0f, dw);
        }
        if (dbias_row) column_sums(dyn, pl.pq, s.k, dbias_row);
    });
}

// ---------------------------------------------------------------------------- channels last on Winograd
// Winograd's transforms gather each tile from NCHW planes, and the GEMMs between them want each
// transformed operand as (channels x tiles) matrices, so an NHWC Winograd would need its own transforms.
// Instead the operands are transposed into NCHW scratch and the NCHW passes run unchanged: two or three
// extra passes over memory against a convolution that is compute-bound, and results that are the NCHW
// results bit for bit. That holds per pass because:
//   forward, backward data   every output of Winograd's forward() depends on its own tile only (the
//                            transforms work per lane, the GEMMs sum over channels in an order set by the
//                            channel count alone), not on which block or group of tiles holds it, nor on
//                            the batch size, so running the batch in chunks of images changes nothing;
//                            the accumulated dx is copied into the scratch first and Winograd adds to it
//                            there, exactly the float adds of the NCHW pass
//   backward filter          the sums over tiles run in blocks of the whole batch, so the bits match
//                            while the batch fits one chunk (kNchwScratchFloats); past that, each chunk
//                            adds its own sums to dweight (still Winograd's error, a different rounding)
// The prefilled dweight is copied in the same way; dbias comes from Winograd's own bias gradient on the
// NCHW dy when the batch fits one chunk, else in one pass over the NHWC dy (conv2d_bias_grad).

// Floats of NCHW copies (x and y, or dy and dx, or x and dy) a channels_last Winograd pass holds at once:
// 64 MiB. A larger batch runs in chunks of whole images.
constexpr int64_t kNchwScratchFloats = int64_t(1) << 24;
// Transposes work on 32 x 32 blocks: 4 KiB read and 4 KiB written, 32 cache lines each, in L1 together,
// so both the strided reads and the strided writes use every line they touch.
constexpr int64_t kTransposeBlock = 32;
// Below this many floats a transpose runs on the calling thread.
constexpr int64_t kTransposeParallelOver = int64_t(1) << 15;

// dst[b][j][i] = src[b][i][j] for `batches` (rows x cols) matrices: NHWC -> NCHW per image with rows = HW
// and cols = C, NCHW -> NHWC with rows = C and cols = HW, KRSC -> KCRS with rows = RS and cols = C. Whole
// blocks per task, a fixed set per thread: only copies, so the schedule cannot change any value.
void transpose(const float* src, float* dst, int64_t batches, int64_t rows, int64_t cols) {
    if (batches <= 0 || rows <= 0 || cols <= 0) return;
    if (rows == 1 || cols == 1) {  // each matrix is a single run either way
        std::memcpy(dst, src, size_t(batches * rows * cols) * sizeof(float));
        return;
    }
    const int64_t rb = ceil_div(rows, kTransposeBlock), cb = ceil_div(cols, kTransposeBlock);
#pragma omp parallel for collapse(3) schedule(static) if (batches * rows * cols >= kTransposeParallelOver)
    for (int64_t b = 0; b < batches; b++)
        for (int64_t ib = 0; ib < rb; ib++)
            for (int64_t jb = 0; jb < cb; jb++) {
                const float* s = src + b * rows * cols;
                float* d = dst + b * rows * cols;
                const int64_t i0 = ib * kTransposeBlock, i1 = std::min(rows, i0 + kTransposeBlock);
                const int64_t j0 = jb * kTransposeBlock, j1 = std::min(cols, j0 + kTransposeBlock);
                int64_t j = j0;
#if defined(__SSE__)
                // 4 x 4 sub-blocks through registers: four 16-byte loads and stores instead of 16 scalar
                // ones (the scalar loop was a third of a channels_last layer1 Winograd pass).
                for (; j + 4 <= j1; j += 4) {
                    int64_t i = i0;
                    for (; i + 4 <= i1; i += 4) {
                        const float* in = s + i * cols + j;
                        __m128 r0 = _mm_loadu_ps(in), r1 = _mm_loadu_ps(in + cols);
                        __m128 r2 = _mm_loadu_ps(in + 2 * cols), r3 = _mm_loadu_ps(in + 3 * cols);
                        _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
                        float* out = d + j * rows + i;
                        _mm_storeu_ps(out, r0), _mm_storeu_ps(out + rows, r1);
                        _mm_storeu_ps(out + 2 * rows, r2), _mm_storeu_ps(out + 3 * rows, r3);
                    }
                    for (; i < i1; i++)
                        for (int64_t jj = j; jj < j + 4; jj++) d[jj * rows + i] = s[i * cols + jj];
                }
#endif
                for (; j < j1; j++)
                    for (int64_t i = i0; i < i1; i++) d[j * rows + i] = s[i * cols + j];
            }
}

// Images per chunk when each needs per_image floats of NCHW copies: equal chunks, each within
// kNchwScratchFloats (one image at least).
int64_t images_per_chunk(int64_t n, int64_t per_image) {
    const int64_t fit = std::max<int64_t>(1, kNchwScratchFloats / std::max<int64_t>(per_image, 1));
    return ceil_div(n, ceil_div(n, fit));
}

// The NCHW copies a channels_last Winograd pass works on: the weight's (w), then for a chunk of `per`
// images an image-side operand (x or dx: x_image floats per image) and an output-side one (y or dy:
// y_image). One buffer per thread for the three passes below (they never run at once on a thread), so at
// most one chunk's copies and a weight stay allocated.
struct NchwCopies {
    int64_t x_image, y_image, per;
    float *w, *x, *y;
};
NchwCopies nchw_copies(const Conv2dShape& s) {
    NchwCopies c;
    c.x_image = s.c * s.h * s.w, c.y_image = s.k * s.p * s.q;
    const int64_t w_floats = round_up(s.k * s.c * s.r * s.s, 16);
    c.per = images_per_chunk(s.n, c.x_image + c.y_image);
    thread_local Workspace workspace;
    c.w = workspace.get(w_floats + c.per * (c.x_image + c.y_image));
    c.x = c.w + w_floats;
    c.y = c.x + c.per * c.x_image;
    return c;
}

// s with NCHW operands: the shape the Winograd passes are called with.
Conv2dShape as_nchw(const Conv2dShape& s) {
    Conv2dShape t = s;
    t.channels_last = false;
    return t;
}

void conv2d_fwd_winograd_nhwc(int m, const Conv2dShape& s, float* y, const float* x, const float* weight,
                              const float* bias) {
    const NchwCopies c = nchw_copies(s);
    transpose(weight, c.w, s.k, s.r * s.s, s.c);  // KRSC -> KCRS
    Conv2dShape t = as_nchw(s);
    for (int64_t n0 = 0; n0 < s.n; n0 += c.per) {
        t.n = std::min(c.per, s.n - n0);
        transpose(x + n0 * c.x_image, c.x, t.n, s.h * s.w, s.c);
        conv2d_fwd_winograd(m, t, c.y, c.x, c.w, bias);  // writes every output, bias included
        transpose(c.y, y + n0 * c.y_image, t.n, s.k, s.p * s.q);
    }
}

void conv2d_bwd_data_winograd_nhwc(int m, const Conv2dShape& s, float* dx, const float* dy, const float* weight) {
    const NchwCopies c = nchw_copies(s);
    transpose(weight, c.w, s.k, s.r * s.s, s.c);
    Conv2dShape t = as_nchw(s);
    for (int64_t n0 = 0; n0 < s.n; n0 += c.per) {
        t.n = std::min(c.per, s.n - n0);
        float* dxn = dx + n0 * c.x_image;
        transpose(dy + n0 * c.y_image, c.y, t.n, s.p * s.q, s.k);
        transpose(dxn, c.x, t.n, s.h * s.w, s.c);  // the values to accumulate onto
        conv2d_bwd_data_winograd(m, t, c.x, c.y, c.w);
        transpose(c.x, dxn, t.n, s.c, s.h * s.w);
    }
}

void conv2d_bwd_filter_winograd_nhwc(int m, const Conv2dShape& s, float* dweight, float* dbias, const float* dy,
                                     const float* x) {
    const NchwCopies c = nchw_copies(s);
    transpose(dweight, c.w, s.k, s.r * s.s, s.c);  // the values to accumulate onto, KRSC -> KCRS
    // One chunk: Winograd's bias gradient on the NCHW dy, as the NCHW pass. Several: one pass over the
    // whole NHWC dy rather than one float add per chunk.
    const bool one_chunk = c.per >= s.n;
    Conv2dShape t = as_nchw(s);
    for (int64_t n0 = 0; n0 < s.n; n0 += c.per) {
        t.n = std::min(c.per, s.n - n0);
        transpose(x + n0 * c.x_image, c.x, t.n, s.h * s.w, s.c);
        transpose(dy + n0 * c.y_image, c.y, t.n, s.p * s.q, s.k);
        conv2d_bwd_filter_winograd(m, t, c.w, one_chunk ? dbias : nullptr, c.y, c.x);
    }
    transpose(c.w, dweight, s.k, s.c, s.r * s.s);  // KCRS -> KRSC
    if (dbias && !one_chunk) conv2d_bias_grad(s, dbias, dy);
}

// Below this many dy values the bias gradient runs on the calling thread.
constexpr int64_t kBiasParallelOver = int64_t(1) << 14;

// Sum of n floats in 16 independent lanes (vectorisable without reassociation), finished in double.
double row_sum(const float* v, int64_t n) {
    float lanes[16] = {};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++) lanes[l] += v[i + l];
    double total = 0;
    for (float l : lanes) total += double(l);
    for (; i < n; i++) total += double(v[i]);
    return total;
}

}  // namespace

// Automatic: F(4x4, 3x3) where bench_conv measured it faster than im2col in every pass
// (docs/performance.md): with few channels the transforms cost more than the multiplications they save
// (3 -> 32 channels: 2-3x slower), and outputs under 4x4 fill a tile only partly.
// The rule looks at sizes only, so a channels_last shape gets the tile its NCHW twin gets (and runs it
// on NCHW copies, above).
int winograd_tile(const Conv2dShape& s) {
    const ConvAlgo a = conv_algo();
    if (a == ConvAlgo::im2col || !winograd_applies(s)) return 0;
    if (a == ConvAlgo::automatic) return s.c >= 16 && s.k >= 16 && s.p >= 4 && s.q >= 4 ? 4 : 0;
    return a == ConvAlgo::winograd_2x2 ? 2 : 4;
}

void conv2d_bias_grad(const Conv2dShape& s, float* dbias, const float* dy) {
    const int64_t pq = s.p * s.q;
    if (s.channels_last) {  // dy is (N*P*Q, K): column sums
        std::vector<double> sum(size_t(std::max<int64_t>(s.k, 0)), 0.0);
        column_sums(dy, s.n * pq, s.k, sum.data());
        for (int64_t k = 0; k < s.k; k++) dbias[k] += float(sum[size_t(k)]);
        return;
    }
#pragma omp parallel for schedule(static) if (s.n * s.k * pq >= kBiasParallelOver)
    for (int64_t k = 0; k < s.k; k++) {
        double total = 0;
        for (int64_t n = 0; n < s.n; n++) total += row_sum(dy + (n * s.k + k) * pq, pq);
        dbias[k] += float(total);
    }
}

void conv2d_fwd(const Conv2dShape& s, float* y, const float* x, const float* weight, const float* bias) {
    if (s.n <= 0 || s.k <= 0 || s.p <= 0 || s.q <= 0) return;
    if (const int m = winograd_tile(s))
        return s.channels_last ? conv2d_fwd_winograd_nhwc(m, s, y, x, weight, bias)
                               : conv2d_fwd_winograd(m, s, y, x, weight, bias);
    if (s.channels_last) return conv2d_fwd_nhwc(s, y, x, weight, bias);
    const Plan pl = make_plan(s);
    // The bias rides in the GEMM: W gets one more column holding it, and col one more row of ones, so
    // no separate pass over y adds it. The direct path (col is x itself) prefills y with it instead.
    const bool fold_bias = bias && !pl.direct;
    const int64_t depth = pl.crs + (fold_bias ? 1 : 0);  // the GEMM's k
    const int64_t wb_floats = fold_bias ? round_up(s.k * depth, 16) : 0;
    thread_local Workspace workspace;
    float* buf = workspace.get(std::max<int64_t>(wb_floats + pl.threads * pl.col_floats, 1));
    const float* a = weight;
    if (fold_bias) {
        for (int64_t k = 0; k < s.k; k++) {
            std::copy(weight + k * pl.crs, weight + (k + 1) * pl.crs, buf + k * depth);
            buf[k * depth + pl.crs] = bias[k];
        }
        a = buf;
    }
    for_each_image(pl, s.n, [&](int64_t n, int worker) {
        const float* xn = x + n * s.c * s.h * s.w;
        float* yn = y + n * s.k * pl.pq;
        float* col = buf + wb_floats + worker * pl.col_floats;
        for (int64_t p0 = 0; p0 < s.p; p0 += pl.rows) {
            const int64_t p1 = std::min(p0 + pl.rows, s.p), cols = (p1 - p0) * s.q;
            GemmShape g;  // y[n][:, chunk] (K x cols) = W (K x depth) * col (depth x cols)
            g.m = s.k, g.n = cols, g.k = depth;
            g.lda = depth, g.ldc = pl.pq;
            float* out = yn + p0 * s.q;
            if (pl.direct) {
                g.ldb = pl.pq;
                if (bias)
                    for (int64_t k = 0; k < s.k; k++) std::fill(out + k * pl.pq, out + k * pl.pq + cols, bias[k]);
                gemm(g, 1.0f, a, xn + p0 * s.q, bias ? 1.0f : 0.0f, out);
            } else {
                im2col(s, xn, col, p0, p1);
                if (fold_bias) std::fill(col + pl.crs * cols, col + depth * cols, 1.0f);
                g.ldb = cols;
                gemm(g, 1.0f, a, col, 0.0f, out);
            }
        }
    });
}

void conv2d_bwd_data(const Conv2dShape& s, float* dx, const float* dy, const float* weight) {
    if (s.n <= 0 || s.k <= 0 || s.p <= 0 || s.q <= 0 || s.c * s.h * s.w <= 0) return;
    if (const int m = winograd_tile(s))
        return s.channels_last ? conv2d_bwd_data_winograd_nhwc(m, s, dx, dy, weight)
                               : conv2d_bwd_data_winograd(m, s, dx, dy, weight);
    if (s.channels_last) return conv2d_bwd_data_nhwc(s, dx, dy, weight);
    const Plan pl = make_plan(s);
    thread_local Workspace workspace;
    float* buf = workspace.get(std::max<int64_t>(pl.threads * pl.col_floats, 1));
    for_each_image(pl, s.n, [&](int64_t n, int worker) {
        const float* dyn = dy + n * s.k * pl.pq;
        float* dxn = dx + n * s.c * s.h * s.w;
        float* dcol = buf + worker * pl.col_floats;
        for (int64_t p0 = 0; p0 < s.p; p0 += pl.rows) {
            const int64_t p1 = std::min(p0 + pl.rows, s.p), cols = (p1 - p0) * s.q;
            GemmShape g;  // dcol (CRS x cols) = W^T (CRS x K, W read transposed) * dy[n][:, chunk] (K x cols)
            g.m = pl.crs, g.n = cols, g.k = s.k;
            g.trans_a = true, g.lda = pl.crs, g.ldb = pl.pq;
            if (pl.direct) {  // dcol is dx[n] itself: accumulate in place
                g.ldc = pl.pq;
                gemm(g, 1.0f, weight, dyn + p0 * s.q, 1.0f, dxn + p0 * s.q);
            } else {
                g.ldc = cols;
                gemm(g, 1.0f, weight, dyn + p0 * s.q, 0.0f, dcol);
                col2im(s, dcol, dxn, p0, p1);
            }
        }
    });
}

void conv2d_bwd_filter(const Conv2dShape& s, float* dweight, float* dbias, const float* dy, const float* x) {
    if (s.n <= 0 || s.k <= 0 || s.p <= 0 || s.q <= 0) return;
    if (const int m = winograd_tile(s))
        return s.channels_last ? conv2d_bwd_filter_winograd_nhwc(m, s, dweight, dbias, dy, x)
                               : conv2d_bwd_filter_winograd(m, s, dweight, dbias, dy, x);
    if (s.channels_last) return conv2d_bwd_filter_nhwc(s, dweight, dbias, dy, x);
    bwd_filter_by_worker(s, dweight, dbias, [&](const Plan& pl, int64_t n, float* col, float* dw, double* dbias_row) {
        const float* dyn = dy + n * s.k * pl.pq;
        const float* xn = x + n * s.c * s.h * s.w;
        for (int64_t p0 = 0; p0 < s.p; p0 += pl.rows) {
            const int64_t p1 = std::min(p0 + pl.rows, s.p), cols = (p1 - p0) * s.q;
            GemmShape g;  // dW (K x CRS) += dy[n][:, chunk] (K x cols) * col^T (cols x CRS, col read transposed)
            g.m = s.k, g.n = pl.crs, g.k = cols;
            g.trans_b = true, g.lda = pl.pq, g.ldc = pl.crs;
            const float* bm = col;
            if (pl.direct) {
                bm = xn + p0 * s.q, g.ldb = pl.pq;
            } else {
                im2col(s, xn, col, p0, p1);
                g.ldb = cols;
            }
            gemm(g, 1.0f, dyn + p0 * s.q, bm, 1.0f, dw);
        }
        if (dbias_row)
            for (int64_t k = 0; k < s.k; k++) dbias_row[k] += row_sum(dyn + k * pl.pq, pl.pq);
    });
}

}  // namespace dyad::omp
