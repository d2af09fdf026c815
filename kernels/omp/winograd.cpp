// Winograd convolution F(m x m, 3 x 3), OpenMP: the 3x3 stride-1 convolutions in fewer multiplications.
//
// A tile of alpha x alpha inputs (alpha = m + 2) gives m x m outputs of a 3x3 filter as
//   y = A^T [ (G g G^T) . (B^T d B) ] A              (. elementwise)
// with the small constant matrices A, B, G below (Lavin and Gray's F(2x2,3x3) and F(4x4,3x3)). The
// elementwise product, summed over input channels, is alpha^2 independent GEMMs: for each of the alpha^2
// positions xi of a transformed tile, M[xi] (K x tiles) = U[xi] (K x C) * V[xi] (C x tiles). So a tile of
// m^2 outputs costs alpha^2 multiply-adds per (k, c) instead of 9 m^2: 16 instead of 36 for m = 2 (2.25x
// fewer), 36 instead of 144 for m = 4 (4x fewer), plus the transforms, whose cost does not grow with K x C.
//
// All three passes use the same transforms:
//   forward          y = A^T [sum_c U . V] A, U = G g G^T, V = B^T d B
//   backward data    the forward pass on dy with the filter flipped and transposed (w'[c][k][r][s] =
//                    w[k][c][2-r][2-s], padding 2 - pad), accumulated into dx
//   backward filter  dW = G^T [sum over tiles of (A e A^T) . (B^T d B)] G, e the m x m tile of dy: the
//                    same identity read with the roles of y and g swapped (sum_i e_i d_{i+j} =
//                    sum_k G[k][j] (A e)_k (B^T d)_k), summed over tiles by GEMMs of depth `tiles`.
//
// The tiles of the whole batch are taken in blocks (sized so that a block's transformed inputs and
// outputs stay in the caches and the GEMMs are wide enough to run near peak); each block runs in three
// parallel phases (transform, alpha^2 batched GEMMs on omp::gemm, inverse transform). The transforms work
// on 8 tiles (or 8 channels) at once, one per vector lane. Every sum is taken in the same order for any
// thread count.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../conv.h"
#include "../gemm.h"
#include "workspace.h"

// The transforms are compiled twice: for AVX2 + FMA (8 lanes in one register, and the row gathers and
// scatters below) and for the baseline ISA; the CPU picks once (transforms()).
#if defined(__x86_64__) || defined(__i386__)
#define DYAD_WINO_X86 1
#include <immintrin.h>  // only used in functions compiled for AVX2
#define DYAD_WINO_AVX2 __attribute__((flatten, target("avx2,fma")))
#define DYAD_WINO_AVX2_INLINE __attribute__((target("avx2,fma"))) inline
#else
#define DYAD_WINO_X86 0
#endif
#define DYAD_WINO_BASE __attribute__((flatten))

namespace dyad::omp {

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

constexpr int kL = 8;  // lanes: tiles (or channels) transformed together

// ---------------------------------------------------------------------------- 1-D transforms
// Each transform maps n vectors of kL lanes to n' vectors: in[i] at in + i * is, out[i] at out + i * os
// (strides in floats). Written out by hand: multiplications by 0 and 1 cannot be folded in IEEE float.
template <int M>
struct F;

template <>
struct F<2> {
    // B^T d: 4 -> 4.
    static void input(const float* in, int64_t is, float* out, int64_t os) {
#pragma omp simd
        for (int l = 0; l < kL; l++) {
            const float d0 = in[l], d1 = in[is + l], d2 = in[2 * is + l], d3 = in[3 * is + l];
            out[l] = d0 - d2;
            out[os + l] = d1 + d2;
            out[2 * os + l] = d2 - d1;
            out[3 * os + l] = d1 - d3;
        }
    }
    // G g: 3 -> 4.
    static void filter(const float* in, int64_t is, float* out, int64_t os) {
#pragma omp simd
        for (int l = 0; l < kL; l++) {
            const float g0 = in[l], g1 = in[is + l], g2 = in[2 * is + l];
            const float h = 0.5f * (g0 + g2);
            out[l] = g0;
            out[os + l] = h + 0.5f * g1;
            out[2 * os + l] = h - 0.5f * g1;
            out[3 * os + l] = g2;
        }
    }
    // A^T m: 4 -> 2.
    static void output(const float* in, int64_t is, float* out, int64_t os) {
#pragma omp simd
        for (int l = 0; l < kL; l++) {
            const float m0 = in[l], m1 = in[is + l], m2 = in[2 * is + l], m3 = in[3 * is + l];
            out[l] = m0 + m1 + m2;
            out[os + l] = m1 - m2 - m3;
        }
    }
    // A e: 2 -> 4 (backward filter, a tile of dy).
    static void grad(const float* in, int64_t is, float* out, int64_t os) {
#pragma omp simd
        for (int l = 0; l < kL; l++) {
            const float e0 = in[l], e1 = in[is + l];
            out[l] = e0;
            out[os + l] = e0 + e1;
            out[2 * os + l] = e0 - e1;
            out[3 * os + l] = -e1;
        }
    }
    // G^T m: 4 -> 3 (backward filter, the filter gradient).
    static void filter_grad(const float* in, int64_t is, float* out, int64_t os) {
#pragma omp simd
        for (int l = 0; l < kL; l++) {
            const float m0 = in[l], m1 = in[is + l], m2 = in[2 * is + l], m3 = in[3 * is + l];
            const float s = 0.5f * (m1 + m2);
            out[l] = m0 + s;
            out[os + l] = 0.5f * (m1 - m2);
            out[2 * os + l] = s + m3;
        }
    }
};

template <>
struct F<4> {
    // B^T d: 6 -> 6.
    static void input(const float* in, int64_t is, float* out, int64_t os) {
#pragma omp simd
        for (int l = 0; l < kL; l++) {
            const float d0 = in[l], d1 = in[is + l], d2 = in[2 * is + l], d3 = in[3 * is + l], d4 = in[4 * is + l],
                        d5 = in[5 * is + l];
            const float a = d4 - 4.0f * d2, b = d3 - 4.0f * d1;  // rows 1 and 2
            const float c = d4 - d2, e = 2.0f * (d3 - d1);       // rows 3 and 4
            out[l] = 4.0f * d0 - 5.0f * d2 + d4;
            out[os + l] = a + b;
            out[2 * os + l] = a - b;
            out[3 * os + l] = c + e;
            out[4 * os + l] = c - e;
            out[5 * os + l] = 4.0f * d1 - 5.0f * d3 + d5;
        }
    }
    // G g: 3 -> 6.
    static void filter(const float* in, int64_t is, float* out, int64_t os) {
#pragma omp simd
        for (int l = 0; l < kL; l++) {
            const float g0 = in[l], g1 = in[is + l], g2 = in[2 * is + l];
            const float s = g0 + g2, t = g0 * (1.0f / 24) + g2 * (1.0f / 6);
            out[l] = g0 * 0.25f;
            out[os + l] = -(s + g1) * (1.0f / 6);
            out[2 * os + l] = -(s - g1) * (1.0f / 6);
            out[3 * os + l] = t + g1 * (1.0f / 12);
            out[4 * os + l] = t - g1 * (1.0f / 12);
            out[5 * os + l] = g2;
        }
    }
    // A^T m: 6 -> 4.
    static void output(const float* in, int64_t is, float* out, int64_t os) {
#pragma omp simd
        for (int l = 0; l < kL; l++) {
            const float m0 = in[l], m1 = in[is + l], m2 = in[2 * is + l], m3 = in[3 * is + l], m4 = in[4 * is + l],
                        m5 = in[5 * is + l];
            const float s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4;
            out[l] = m0 + s12 + s34;
            out[os + l] = d12 + 2.0f * d34;
            out[2 * os + l] = s12 + 4.0f * s34;
            out[3 * os + l] = d12 + 8.0f * d34 + m5;
        }
    }
    // A e: 4 -> 6.
    static void grad(const float* in, int64_t is, float* out, int64_t os) {
#pragma omp simd
        for (int l = 0; l < kL; l++) {
            const float e0 = in[l], e1 = in[is + l], e2 = in[2 * is + l], e3 = in[3 * is + l];
            const float a = e0 + e2, b = e1 + e3, c = e0 + 4.0f * e2, d = 2.0f * e1 + 8.0f * e3;
            out[l] = e0;
            out[os + l] = a + b;
            out[2 * os + l] = a - b;
            out[3 * os + l] = c + d;
            out[4 * os + l] = c - d;
            out[5 * os + l] = e3;
        }
    }
    // G^T m: 6 -> 3.
    static void filter_grad(const float* in, int64_t is, float* out, int64_t os) {
#pragma omp simd
        for (int l = 0; l < kL; l++) {
            const float m0 = in[l], m1 = in[is + l], m2 = in[2 * is + l], m3 = in[3 * is + l], m4 = in[4 * is + l],
                        m5 = in[5 * is + l];
            const float s12 = m1 + m2, d12 = m2 - m1, s34 = m3 + m4, d34 = m3 - m4;
            out[l] = 0.25f * m0 - s12 * (1.0f / 6) + s34 * (1.0f / 24);
            out[os + l] = d12 * (1.0f / 6) + d34 * (1.0f / 12);
            out[2 * os + l] = (s34 - s12) * (1.0f / 6) + m5;
        }
    }
};

// 2-D transform of a tile of n x n vectors (in: row-major, n * n * kL floats) into n' x n' vectors, row i'
// of the result at out + i' * n' * os, column j' at + j' * os: first down the columns, then along rows.
template <int N, int NOut, class T1>
void transform_2d(const float* in, float* out, int64_t os, T1 f1) {
    float t[NOut * N * kL];
    for (int j = 0; j < N; j++) f1(in + j * kL, N * kL, t + j * kL, N * kL);  // columns: t is NOut x N
    for (int i = 0; i < NOut; i++) f1(t + i * N * kL, kL, out + i * NOut * os, os);
}

// ---------------------------------------------------------------------------- tiles
// Where the lanes of one group of kL tiles read and write: tile t of the batch is image t / (th * tw), tile
// row (t % (th * tw)) / tw, tile column t % tw. Lanes past the last tile read zeros and write nothing.
struct Group {
    int64_t in[kL];          // offset of the tile's top-left input (may lie in the padding)
    int64_t out[kL];         // offset of the tile's top-left output
    int ilo[kL], ihi[kL];    // tile rows [ilo, ihi) lie inside the input
    int jlo[kL], jhi[kL];    // tile columns likewise
    int rows[kL], cols[kL];  // outputs of the tile inside the output (0 for a missing lane)
    bool interior = false;   // every lane's whole tile inside the input
    // A row group: the lanes are kL consecutive tiles of one tile row of one image, so that each input row
    // of the group is one segment of an image row (m * kL + 2 columns from x0) and each output row one
    // run of m * kL outputs (when every lane's tile is whole there: out_full).
    bool row = false, out_full = false;
    int64_t image_in = 0, y0 = 0, x0 = 0;  // the image's offset in x; the group's top-left input
};

struct Tiling {
    int m = 0, alpha = 0;
    int64_t th = 0, tw = 0, tiles = 0;  // tiles per column and row of an image; of the batch
    int64_t block = 0;                  // tiles per block (a multiple of kL)
};

// The group of kL tiles from tile t0: input (h x w, padding pad_h, pad_w), output p x q, images in_image and
// out_image floats apart.
Group make_group(const Tiling& tl, int64_t t0, int64_t h, int64_t w, int64_t p, int64_t q, int64_t pad_h, int64_t pad_w,
                 int64_t in_image, int64_t out_image) {
    Group g;
    g.interior = true;
    for (int l = 0; l < kL; l++) {
        const int64_t t = t0 + l;
        if (t >= tl.tiles) {
            g.in[l] = g.out[l] = 0;
            g.ilo[l] = g.ihi[l] = g.jlo[l] = g.jhi[l] = 0;
            g.rows[l] = g.cols[l] = 0;
            g.interior = false;
            continue;
        }
        const int64_t n = t / (tl.th * tl.tw), r = (t % (tl.th * tl.tw)) / tl.tw, c = t % tl.tw;
        const int64_t y0 = r * tl.m - pad_h, x0 = c * tl.m - pad_w;  // top-left input
        g.in[l] = n * in_image + y0 * w + x0;
        g.out[l] = n * out_image + r * tl.m * q + c * tl.m;
        g.ilo[l] = int(std::clamp<int64_t>(-y0, 0, tl.alpha));
        g.ihi[l] = int(std::clamp<int64_t>(h - y0, g.ilo[l], tl.alpha));
        g.jlo[l] = int(std::clamp<int64_t>(-x0, 0, tl.alpha));
        g.jhi[l] = int(std::clamp<int64_t>(w - x0, g.jlo[l], tl.alpha));
        g.rows[l] = int(std::min<int64_t>(tl.m, p - r * tl.m));
        g.cols[l] = int(std::min<int64_t>(tl.m, q - c * tl.m));
        g.interior = g.interior && g.ilo[l] == 0 && g.ihi[l] == tl.alpha && g.jlo[l] == 0 && g.jhi[l] == tl.alpha;
        if (l == 0) {  // a row group is described by its first tile
            g.image_in = n * in_image, g.y0 = y0, g.x0 = x0;
            g.out_full = (c + kL) * tl.m <= q;
        }
    }
    const int64_t last = t0 + kL - 1;
    g.row = last < tl.tiles && t0 / tl.tw == last / tl.tw;  // one tile row (of one image)
    return g;
}

#if DYAD_WINO_X86
// out[j * os] = the vector {p[4 l + j]} over l < 8, for j < n (n <= 4): the phases of a stride-4 run of
// 32 floats (reads p[0, 32)), by an 8 x 4 transpose in registers.
template <int N>
DYAD_WINO_AVX2_INLINE void phases4_avx2(const float* p, float* out, int64_t os) {
    const __m256 a0 = _mm256_loadu_ps(p), a1 = _mm256_loadu_ps(p + 8), a2 = _mm256_loadu_ps(p + 16),
                 a3 = _mm256_loadu_ps(p + 24);
    // a0 = [M0 M1], a1 = [M2 M3], a2 = [M4 M5], a3 = [M6 M7], M_l = p[4l, 4l + 4)
    const __m256 b0 = _mm256_permute2f128_ps(a0, a2, 0x20), b1 = _mm256_permute2f128_ps(a0, a2, 0x31);
    const __m256 b2 = _mm256_permute2f128_ps(a1, a3, 0x20), b3 = _mm256_permute2f128_ps(a1, a3, 0x31);
    // b0 = [M0 M4], b1 = [M1 M5], b2 = [M2 M6], b3 = [M3 M7]: a 4 x 4 transpose in each 128-bit half
    const __m256 t0 = _mm256_unpacklo_ps(b0, b1), t1 = _mm256_unpackhi_ps(b0, b1);
    const __m256 t2 = _mm256_unpacklo_ps(b2, b3), t3 = _mm256_unpackhi_ps(b2, b3);
    _mm256_storeu_ps(out, _mm256_shuffle_ps(t0, t2, 0x44));
    if (N > 1) _mm256_storeu_ps(out + os, _mm256_shuffle_ps(t0, t2, 0xEE));
    if (N > 2) _mm256_storeu_ps(out + 2 * os, _mm256_shuffle_ps(t1, t3, 0x44));
    if (N > 3) _mm256_storeu_ps(out + 3 * os, _mm256_shuffle_ps(t1, t3, 0xEE));
}

// F(4x4): d[i][j][l] for a row group, each of the 6 input rows gathered from its image row by phases4_avx2
// (directly, or from a zero-padded copy where the segment reaches past the image's columns).
DYAD_WINO_AVX2_INLINE void gather_row4_avx2(const Group& g, const float* x, int64_t h, int64_t w, float* d) {
    constexpr int A = 6, kSpan = 4 * kL + 4;  // columns read: x0 .. x0 + 36 (34 used)
    alignas(32) float seg[kSpan];
    for (int i = 0; i < A; i++) {
        float* di = d + i * A * kL;
        const int64_t y = g.y0 + i;
        if (y < 0 || y >= h) {
            std::fill(di, di + A * kL, 0.0f);
            continue;
        }
        const float* src;
        if (g.x0 >= 0 && g.x0 + kSpan <= w) {
            src = x + g.image_in + y * w + g.x0;
        } else {
            const int64_t lo = std::max<int64_t>(0, -g.x0), hi = std::min<int64_t>(kSpan, w - g.x0);
            std::fill(seg, seg + kSpan, 0.0f);
            for (int64_t j = lo; j < hi; j++) seg[j] = x[g.image_in + y * w + g.x0 + j];
            src = seg;
        }
        phases4_avx2<4>(src, di, kL);
        phases4_avx2<2>(src + 4, di + 4 * kL, kL);
    }
}

// F(4x4): the output rows of a row group whose tiles are whole: o[i][j][l] (4 x 4 x kL) to rows of 32
// contiguous outputs at dst + i * q, plus b, written or added.
DYAD_WINO_AVX2_INLINE void scatter_row4_avx2(const float* o, int rows, float* dst, int64_t q, float b,
                                             bool accumulate) {
    const __m256 bias = _mm256_set1_ps(b);
    for (int i = 0; i < rows; i++, dst += q) {
        const float* oi = o + i * 4 * kL;
        const __m256 p0 = _mm256_loadu_ps(oi), p1 = _mm256_loadu_ps(oi + kL), p2 = _mm256_loadu_ps(oi + 2 * kL),
                     p3 = _mm256_loadu_ps(oi + 3 * kL);
        // the inverse of phases4_avx2: vectors over lanes to four values per lane, lane after lane
        const __m256 t0 = _mm256_unpacklo_ps(p0, p1), t1 = _mm256_unpackhi_ps(p0, p1);
        const __m256 t2 = _mm256_unpacklo_ps(p2, p3), t3 = _mm256_unpackhi_ps(p2, p3);
        const __m256 b0 = _mm256_shuffle_ps(t0, t2, 0x44), b1 = _mm256_shuffle_ps(t0, t2, 0xEE);
        const __m256 b2 = _mm256_shuffle_ps(t1, t3, 0x44), b3 = _mm256_shuffle_ps(t1, t3, 0xEE);
        __m256 r[4] = {_mm256_permute2f128_ps(b0, b1, 0x20), _mm256_permute2f128_ps(b2, b3, 0x20),
                       _mm256_permute2f128_ps(b0, b1, 0x31), _mm256_permute2f128_ps(b2, b3, 0x31)};
        for (int v = 0; v < 4; v++) {
            __m256 val = _mm256_add_ps(r[v], bias);
            if (accumulate) val = _mm256_add_ps(_mm256_loadu_ps(dst + 8 * v), val);
            _mm256_storeu_ps(dst + 8 * v, val);
        }
    }
}
#endif

// d[i][j][l] = channel plane x (h x w) at the lane's tile (i, j), zero outside it: the rectangle of each
// lane's tile that lies inside the image copied, the rest of d cleared first.
template <int A>
void gather_input(const Group& g, const float* x, int64_t w, float* d) {
    if (!g.interior) std::fill(d, d + A * A * kL, 0.0f);
    for (int l = 0; l < kL; l++)  // g.in may point into the padding: indexed only inside the image
        for (int i = g.ilo[l]; i < g.ihi[l]; i++)
            for (int j = g.jlo[l]; j < g.jhi[l]; j++) d[(i * A + j) * kL + l] = x[g.in[l] + i * w + j];
}

// V[xi][c][col0 + l] = (B^T d B)[xi] of channel c for channels [c0, c1) of one group.
template <int M, bool kAvx2>
void input_transform(const Group& g, const float* x, int64_t plane, int64_t h, int64_t w, int64_t c0, int64_t c1,
                     float* v, int64_t xi_stride, int64_t ld, int64_t col0) {
    constexpr int A = M + 2;
    alignas(32) float d[A * A * kL];
    (void)h;  // read by the AVX2 row gather only
    for (int64_t c = c0; c < c1; c++) {
#if DYAD_WINO_X86
        if constexpr (kAvx2 && M == 4)
            if (g.row) {
                gather_row4_avx2(g, x + c * plane, h, w, d);
                transform_2d<A, A>(d, v + c * ld + col0, xi_stride, F<M>::input);
                continue;
            }
#endif
        gather_input<A>(g, x + c * plane, w, d);
        transform_2d<A, A>(d, v + c * ld + col0, xi_stride, F<M>::input);
    }
}

// E[xi][k][col0 + l] = (A e A^T)[xi], e the m x m tile of dy plane k (zero outside p x q), for [k0, k1).
template <int M, bool kAvx2>
void grad_transform(const Group& g, const float* dy, int64_t plane, int64_t q, int64_t k0, int64_t k1, float* e,
                    int64_t xi_stride, int64_t ld, int64_t col0) {
    alignas(32) float d[M * M * kL];
    for (int64_t k = k0; k < k1; k++) {
        const float* src = dy + k * plane;
#if DYAD_WINO_X86
        if constexpr (kAvx2 && M == 4) {
            if (g.row && g.out_full) {  // each row of the tiles: 32 contiguous values of dy
                for (int i = 0; i < M; i++) {
                    if (i < g.rows[0])
                        phases4_avx2<4>(src + g.out[0] + i * q, d + i * M * kL, kL);
                    else
                        std::fill(d + i * M * kL, d + (i + 1) * M * kL, 0.0f);
                }
                transform_2d<M, M + 2>(d, e + k * ld + col0, xi_stride, F<M>::grad);
                continue;
            }
        }
#endif
        for (int i = 0; i < M; i++)
            for (int j = 0; j < M; j++)
                for (int l = 0; l < kL; l++)
                    d[(i * M + j) * kL + l] = i < g.rows[l] && j < g.cols[l] ? src[g.out[l] + i * q + j] : 0.0f;
        transform_2d<M, M + 2>(d, e + k * ld + col0, xi_stride, F<M>::grad);
    }
}

// y (plane k of each lane's tile) = A^T M[.][k] A (+ bias), written or added, for outputs [k0, k1).
template <int M, bool kAvx2>
void output_transform(const Group& g, const float* mo, int64_t xi_stride, int64_t ld, int64_t col0, int64_t k0,
                      int64_t k1, float* y, int64_t plane, int64_t q, const float* bias, bool accumulate) {
    constexpr int A = M + 2;
    alignas(32) float in[A * A * kL], out[M * M * kL];
    for (int64_t k = k0; k < k1; k++) {
        for (int xi = 0; xi < A * A; xi++)
            std::memcpy(in + xi * kL, mo + xi * xi_stride + k * ld + col0, sizeof(float) * kL);
        transform_2d<A, M>(in, out, kL, F<M>::output);
        const float b = bias ? bias[k] : 0.0f;
        float* dst = y + k * plane;
#if DYAD_WINO_X86
        if constexpr (kAvx2 && M == 4) {
            if (g.row && g.out_full) {
                scatter_row4_avx2(out, g.rows[0], dst + g.out[0], q, b, accumulate);
                continue;
            }
        }
#endif
        for (int l = 0; l < kL; l++)
            for (int i = 0; i < g.rows[l]; i++) {
                float* o = dst + g.out[l] + i * q;
                const float* v = out + i * M * kL + l;
                if (accumulate)
                    for (int j = 0; j < g.cols[l]; j++) o[j] += v[j * kL] + b;
                else
                    for (int j = 0; j < g.cols[l]; j++) o[j] = v[j * kL] + b;
            }
    }
}

// U[xi][row][col] = (G g G^T)[xi] for rows x cols filters g: g = w[row][col] (a forward filter bank of
// rows x cols 3x3 filters), or, flipped, g[r][s] = w[col][row][2 - r][2 - s] (the backward data filters).
template <int M>
void filter_transform(const float* w, int64_t rows, int64_t cols, bool flipped, float* u, int64_t xi_stride,
                      int64_t row0, int64_t row1) {
    constexpr int A = M + 2;
    alignas(32) float g[9 * kL], out[A * A * kL];
    for (int64_t row = row0; row < row1; row++)
        for (int64_t col0 = 0; col0 < cols; col0 += kL) {
            const int lanes = int(std::min<int64_t>(kL, cols - col0));
            for (int tap = 0; tap < 9; tap++)
                for (int l = 0; l < kL; l++) {
                    const int64_t col = col0 + l;
                    g[tap * kL + l] = l >= lanes ? 0.0f
                                      : flipped  ? w[(col * rows + row) * 9 + 8 - tap]
                                                 : w[(row * cols + col) * 9 + tap];
                }
            transform_2d<3, A>(g, out, kL, F<M>::filter);
            for (int xi = 0; xi < A * A; xi++)
                std::memcpy(u + xi * xi_stride + row * cols + col0, out + xi * kL, sizeof(float) * size_t(lanes));
        }
}

// dw[k][c] += (G^T Mw[.][k][c] G) for k in [k0, k1), all c; Mw is alpha^2 matrices K x C, xi_stride apart.
template <int M>
void filter_grad_transform(const float* mw, int64_t xi_stride, int64_t cc, float* dw, int64_t k0, int64_t k1) {
    constexpr int A = M + 2;
    alignas(32) float in[A * A * kL], out[9 * kL];
    for (int64_t k = k0; k < k1; k++)
        for (int64_t c0 = 0; c0 < cc; c0 += kL) {
            const int lanes = int(std::min<int64_t>(kL, cc - c0));
            for (int xi = 0; xi < A * A; xi++)
                for (int l = 0; l < kL; l++) in[xi * kL + l] = l < lanes ? mw[xi * xi_stride + k * cc + c0 + l] : 0.0f;
            transform_2d<A, 3>(in, out, kL, F<M>::filter_grad);
            for (int l = 0; l < lanes; l++)
                for (int tap = 0; tap < 9; tap++) dw[(k * cc + c0 + l) * 9 + tap] += out[tap * kL + l];
        }
}

// ---------------------------------------------------------------------------- ISA entry points
// Each entry point flattens its templates, so no vector crosses a call.

#define DYAD_WINO_ENTRIES(SUFFIX, ATTR, M, AVX2)                                                                 \
    ATTR void input_##SUFFIX(const Group& g, const float* x, int64_t plane, int64_t h, int64_t w, int64_t c0,    \
                             int64_t c1, float* v, int64_t xs, int64_t ld, int64_t col0) {                       \
        input_transform<M, AVX2>(g, x, plane, h, w, c0, c1, v, xs, ld, col0);                                    \
    }                                                                                                            \
    ATTR void grad_##SUFFIX(const Group& g, const float* dy, int64_t plane, int64_t q, int64_t k0, int64_t k1,   \
                            float* e, int64_t xs, int64_t ld, int64_t col0) {                                    \
        grad_transform<M, AVX2>(g, dy, plane, q, k0, k1, e, xs, ld, col0);                                       \
    }                                                                                                            \
    ATTR void output_##SUFFIX(const Group& g, const float* mo, int64_t xs, int64_t ld, int64_t col0, int64_t k0, \
                              int64_t k1, float* y, int64_t plane, int64_t q, const float* bias, bool acc) {     \
        output_transform<M, AVX2>(g, mo, xs, ld, col0, k0, k1, y, plane, q, bias, acc);                          \
    }                                                                                                            \
    ATTR void filter_##SUFFIX(const float* w, int64_t rows, int64_t cols, bool flipped, float* u, int64_t xs,    \
                              int64_t r0, int64_t r1) {                                                          \
        filter_transform<M>(w, rows, cols, flipped, u, xs, r0, r1);                                              \
    }                                                                                                            \
    ATTR void filter_grad_##SUFFIX(const float* mw, int64_t xs, int64_t cc, float* dw, int64_t k0, int64_t k1) { \
        filter_grad_transform<M>(mw, xs, cc, dw, k0, k1);                                                        \
    }

DYAD_WINO_ENTRIES(base2, DYAD_WINO_BASE, 2, false)
DYAD_WINO_ENTRIES(base4, DYAD_WINO_BASE, 4, false)
#if DYAD_WINO_X86
DYAD_WINO_ENTRIES(avx2_2, DYAD_WINO_AVX2, 2, true)
DYAD_WINO_ENTRIES(avx2_4, DYAD_WINO_AVX2, 4, true)
#endif

struct Transforms {
    void (*input)(const Group&, const float*, int64_t, int64_t, int64_t, int64_t, int64_t, float*, int64_t, int64_t,
                  int64_t);
    void (*grad)(const Group&, const float*, int64_t, int64_t, int64_t, int64_t, float*, int64_t, int64_t, int64_t);
    void (*output)(const Group&, const float*, int64_t, int64_t, int64_t, int64_t, int64_t, float*, int64_t, int64_t,
                   const float*, bool);
    void (*filter)(const float*, int64_t, int64_t, bool, float*, int64_t, int64_t, int64_t);
    void (*filter_grad)(const float*, int64_t, int64_t, float*, int64_t, int64_t);
};

const Transforms& transforms(int m) {
    static const Transforms base2{input_base2, grad_base2, output_base2, filter_base2, filter_grad_base2};
    static const Transforms base4{input_base4, grad_base4, output_base4, filter_base4, filter_grad_base4};
#if DYAD_WINO_X86
    static const Transforms avx2_2{input_avx2_2, grad_avx2_2, output_avx2_2, filter_avx2_2, filter_grad_avx2_2};
    static const Transforms avx2_4{input_avx2_4, grad_avx2_4, output_avx2_4, filter_avx2_4, filter_grad_avx2_4};
    static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (avx2) return m == 2 ? avx2_2 : avx2_4;
#endif
    return m == 2 ? base2 : base4;
}

// ---------------------------------------------------------------------------- the passes
// The distance between the alpha^2 matrices of a transformed operand of `floats` floats each: rounded up
// to whole 4 KiB pages and one cache line more. A transform reads or writes one vector in each of the
// alpha^2 matrices; at a distance of whole pages these would all fall into one set of the 8-way L1 and
// evict each other.
int64_t xi_stride(int64_t floats) { return round_up(floats, 1024) + 16; }

// Channels per task of a transform phase: enough work to outweigh the task's set-up, and tasks enough
// for many threads even when a block has few groups of tiles.
constexpr int64_t kChannelsPerTask = 16;

// Below this much work (floats touched by one phase) a phase runs on the calling thread.
constexpr int64_t kParallelOver = int64_t(1) << 14;
// Floats of one block's transformed operands (inputs and outputs of its GEMMs): 2 MiB, about what two
// cores' L2 and a slice of L3 hold.
constexpr int64_t kBlockFloats = int64_t(1) << 19;
// At least this many tiles per block: the GEMMs' n (or k) below it would pack their other operand for
// too few multiply-adds.
constexpr int64_t kMinBlockTiles = 64;

// rows_a, rows_b: the channel counts of the two transformed operands of a block (C and K); fixed: the
// alpha^2 x rows_a x rows_b operand every block's GEMMs read (U) or update (Mw).
Tiling make_tiling(int m, int64_t n, int64_t p, int64_t q, int64_t rows_a, int64_t rows_b) {
    Tiling tl;
    tl.m = m, tl.alpha = m + 2;
    tl.th = ceil_div(p, m), tl.tw = ceil_div(q, m), tl.tiles = n * tl.th * tl.tw;
    const int64_t a2 = int64_t(tl.alpha) * tl.alpha;
    // Enough tiles that the block's own operands fit kBlockFloats, but no fewer than kMinBlockTiles, nor
    // than it takes for the fixed operand's traffic (read once per block) to be no more than the block's.
    int64_t block =
        std::max({kBlockFloats / (a2 * (rows_a + rows_b)), kMinBlockTiles, rows_a * rows_b / (rows_a + rows_b)});
    block = std::min(round_up(block, kL), round_up(tl.tiles, kL));
    tl.block = std::max<int64_t>(block, kL);
    return tl;
}

// The groups of kL tiles of the block starting at tile t0, `cols` tiles wide.
void make_groups(const Tiling& tl, int64_t t0, int64_t cols, int64_t h, int64_t w, int64_t p, int64_t q, int64_t pad_h,
                 int64_t pad_w, int64_t in_image, int64_t out_image, std::vector<Group>& groups) {
    groups.resize(size_t(cols / kL));
    for (size_t gi = 0; gi < groups.size(); gi++)
        groups[gi] = make_group(tl, t0 + int64_t(gi) * kL, h, w, p, q, pad_h, pad_w, in_image, out_image);
}

// V[xi] (channels x cols, xi `vs` floats apart) = the transforms of the block's tiles of every channel of
// x (planes of h x w).
void transform_inputs(const Transforms& tf, const std::vector<Group>& groups, const float* x, int64_t channels,
                      int64_t h, int64_t w, float* v, int64_t vs, int64_t cols, int64_t a2) {
    const int64_t ng = int64_t(groups.size()), chunks = ceil_div(channels, kChannelsPerTask);
#pragma omp parallel for collapse(2) schedule(static) if (a2 * channels * cols >= kParallelOver)
    for (int64_t gi = 0; gi < ng; gi++)
        for (int64_t ch = 0; ch < chunks; ch++) {
            const int64_t c0 = ch * kChannelsPerTask, c1 = std::min(channels, c0 + kChannelsPerTask);
            tf.input(groups[size_t(gi)], x, h * w, h, w, c0, c1, v, vs, cols, gi * kL);
        }
}

// y = conv(x, filters) (+ bias), or y += it, for the transformed filters u (alpha^2 matrices K x C, us
// floats apart) of a 3x3 stride-1 convolution s with padding up to 2.
void forward(const Transforms& tf, int m, const Conv2dShape& s, float* y, const float* x, const float* u, int64_t us,
             const float* bias, bool accumulate) {
    const Tiling tl = make_tiling(m, s.n, s.p, s.q, s.c, s.k);
    const int64_t a2 = int64_t(tl.alpha) * tl.alpha;
    const int64_t vs = xi_stride(s.c * tl.block), ms = xi_stride(s.k * tl.block);
    thread_local Workspace workspace;
    float* v = workspace.get(a2 * (vs + ms));
    float* mo = v + a2 * vs;
    const int64_t in_image = s.c * s.h * s.w, out_image = s.k * s.p * s.q;
    std::vector<Group> groups;
    for (int64_t t0 = 0; t0 < tl.tiles; t0 += tl.block) {
        const int64_t cols = std::min(tl.block, round_up(tl.tiles - t0, kL));
        make_groups(tl, t0, cols, s.h, s.w, s.p, s.q, s.pad_h, s.pad_w, in_image, out_image, groups);
        transform_inputs(tf, groups, x, s.c, s.h, s.w, v, vs, cols, a2);
        // M[xi] (K x cols) = U[xi] (K x C) * V[xi].
        GemmShape g;
        g.batch = a2, g.m = s.k, g.n = cols, g.k = s.c;
        g.lda = s.c, g.ldb = cols, g.ldc = cols;
        g.stride_a = us, g.stride_b = vs, g.stride_c = ms;
        gemm(g, 1.0f, u, v, 0.0f, mo);
        // y tiles = the inverse transforms.
        const int64_t ng = int64_t(groups.size()), chunks = ceil_div(s.k, kChannelsPerTask);
#pragma omp parallel for collapse(2) schedule(static) if (a2 * s.k * cols >= kParallelOver)
        for (int64_t gi = 0; gi < ng; gi++)
            for (int64_t ch = 0; ch < chunks; ch++) {
                const int64_t k0 = ch * kChannelsPerTask, k1 = std::min(s.k, k0 + kChannelsPerTask);
                tf.output(groups[size_t(gi)], mo, ms, cols, gi * kL, k0, k1, y, s.p * s.q, s.q, bias, accumulate);
            }
    }
}

// The filter transforms of a K x C bank (flipped: the C x K bank of the backward data pass) into u, its
// alpha^2 matrices `us` floats apart.
void transform_filters(const Transforms& tf, const float* w, int64_t rows, int64_t cols, bool flipped, float* u,
                       int64_t us) {
#pragma omp parallel for schedule(static) if (rows * cols * 36 >= kParallelOver)
    for (int64_t row = 0; row < rows; row++) tf.filter(w, rows, cols, flipped, u, us, row, row + 1);
}

// The transformed filters of the forward and backward data passes: one buffer per thread for both (they
// never run at once on a thread), alpha^2 matrices of K x C each, up to 4x the weights.
float* filter_buffer(int64_t floats) {
    thread_local Workspace workspace;
    return workspace.get(floats);
}

std::atomic<ConvAlgo> g_algo{ConvAlgo::automatic};

}  // namespace

bool winograd_applies(const Conv2dShape& s) {
    return s.r == 3 && s.s == 3 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h >= 0 && s.pad_h <= 2 && s.pad_w >= 0 &&
           s.pad_w <= 2 && s.n > 0 && s.c > 0 && s.k > 0 && s.p > 0 && s.q > 0;
}

void conv2d_fwd_winograd(int m, const Conv2dShape& s, float* y, const float* x, const float* weight,
                         const float* bias) {
    const Transforms& tf = transforms(m);
    const int64_t a2 = int64_t(m + 2) * (m + 2), us = xi_stride(s.k * s.c);
    float* u = filter_buffer(a2 * us);
    transform_filters(tf, weight, s.k, s.c, false, u, us);
    forward(tf, m, s, y, x, u, us, bias, false);
}

void conv2d_bwd_data_winograd(int m, const Conv2dShape& s, float* dx, const float* dy, const float* weight) {
    const Transforms& tf = transforms(m);
    const int64_t a2 = int64_t(m + 2) * (m + 2), us = xi_stride(s.k * s.c);
    float* u = filter_buffer(a2 * us);
    transform_filters(tf, weight, s.c, s.k, true, u, us);  // u[xi][c][k]
    Conv2dShape t;  // dx += conv(dy, flipped filters) with padding 2 - pad: a (K -> C) convolution of P x Q
    t.n = s.n, t.c = s.k, t.h = s.p, t.w = s.q;
    t.k = s.c, t.r = 3, t.s = 3, t.p = s.h, t.q = s.w;
    t.pad_h = 2 - s.pad_h, t.pad_w = 2 - s.pad_w;
    forward(tf, m, t, dx, dy, u, us, nullptr, true);
}

void conv2d_bwd_filter_winograd(int m, const Conv2dShape& s, float* dweight, float* dbias, const float* dy,
                                const float* x) {
    const Transforms& tf = transforms(m);
    const Tiling tl = make_tiling(m, s.n, s.p, s.q, s.c, s.k);
    const int64_t a2 = int64_t(tl.alpha) * tl.alpha;
    const int64_t vs = xi_stride(s.c * tl.block), es = xi_stride(s.k * tl.block), ws = xi_stride(s.k * s.c);
    thread_local Workspace workspace;
    float* v = workspace.get(a2 * (vs + es + ws));
    float* e = v + a2 * vs;
    float* mw = e + a2 * es;
    const int64_t in_image = s.c * s.h * s.w, out_image = s.k * s.p * s.q;
    std::vector<Group> groups;
    for (int64_t t0 = 0; t0 < tl.tiles; t0 += tl.block) {
        const int64_t cols = std::min(tl.block, round_up(tl.tiles - t0, kL));
        make_groups(tl, t0, cols, s.h, s.w, s.p, s.q, s.pad_h, s.pad_w, in_image, out_image, groups);
        transform_inputs(tf, groups, x, s.c, s.h, s.w, v, vs, cols, a2);
        const int64_t ng = int64_t(groups.size()), chunks = ceil_div(s.k, kChannelsPerTask);
#pragma omp parallel for collapse(2) schedule(static) if (a2 * s.k * cols >= kParallelOver)
        for (int64_t gi = 0; gi < ng; gi++)
            for (int64_t ch = 0; ch < chunks; ch++) {
                const int64_t k0 = ch * kChannelsPerTask, k1 = std::min(s.k, k0 + kChannelsPerTask);
                tf.grad(groups[size_t(gi)], dy, s.p * s.q, s.q, k0, k1, e, es, cols, gi * kL);
            }
        // Mw[xi] (K x C) += E[xi] (K x cols) * V[xi]^T.
        GemmShape g;
        g.batch = a2, g.m = s.k, g.n = s.c, g.k = cols;
        g.trans_b = true, g.lda = cols, g.ldb = cols, g.ldc = s.c;
        g.stride_a = es, g.stride_b = vs, g.stride_c = ws;
        gemm(g, 1.0f, e, v, t0 == 0 ? 0.0f : 1.0f, mw);
    }
#pragma omp parallel for schedule(static) if (a2 * s.k * s.c >= kParallelOver)
    for (int64_t k = 0; k < s.k; k++) tf.filter_grad(mw, ws, s.c, dweight, k, k + 1);
    if (dbias) conv2d_bias_grad(s, dbias, dy);
}

void set_conv_algo(ConvAlgo a) { g_algo.store(a); }
ConvAlgo conv_algo() { return g_algo.load(); }

}  // namespace dyad::omp
