// GEMM, OpenMP. Twin of kernels/naive/gemm.cpp; differs in summation order only: k is split into
// cache-sized blocks, A and B are packed into aligned panels, and a register-blocked micro-kernel (AVX-512,
// AVX2+FMA or portable C++, chosen at run time) computes MR x NR tiles of C with FMAs. Threads split C.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "../gemm.h"
#include "workspace.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#if !defined(__GNUC__)
#error "kernels/omp/gemm.cpp needs GCC or Clang (target and flatten attributes)"
#endif
// The AVX2 and AVX-512 paths exist on x86 only; elsewhere the portable micro-kernel runs.
#if defined(__x86_64__) || defined(__i386__)
#define DYAD_GEMM_X86 1
#include <immintrin.h>  // intrinsics; only called from functions compiled for the matching ISA
#else
#define DYAD_GEMM_X86 0
#endif

namespace dyad::omp {

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// ---------------------------------------------------------------------------- vector traits
// Each ISA is a traits struct: the register type, the handful of operations the micro-kernel needs, the
// micro-tile (kMr rows x 2 vectors of kWidth columns) and the cache block sizes. The templates below are
// the same code for every ISA, so the AVX2 tests exercise the logic the AVX-512 path runs. The
// operations take registers by reference: the templates are compiled for the baseline ISA, and a vector
// passed by value from there would change the calling convention (GCC warns, Clang refuses); once
// flattened into the ISA's entry points (below) no call is left anyway.
//
// Block sizes. A micro-panel of B (kc x NR) is reused for every MR-row sliver of A in the block and
// should stay in L1 together with the current A sliver (MR x kc); the packed A block (mc x kc) is reused
// for every NR panel of B and should stay in L2; the packed B block (kc x nc) lives in L3 and is reused
// for every mc block of A.

// Plain C++ (any CPU): 4-float "registers" that the compiler may map onto SSE2 or NEON, a 6 x 8 tile.
// kc = 256 as for AVX2 (8 KiB B micro-panel); mc = 120 and nc = 2048 for the smaller L2 and L3 of the
// older CPUs that end up here.
struct Portable {
    static constexpr const char* kName = "portable";
    static constexpr int kWidth = 4, kMr = 6;
    static constexpr int64_t kKc = 256, kMc = 120, kNc = 2048;
    struct Reg {
        float v[kWidth];
    };
    static void zero(Reg& r) { r = Reg{}; }
    static void load(Reg& r, const float* p) { std::memcpy(r.v, p, sizeof r.v); }
    static void loadu(Reg& r, const float* p) { std::memcpy(r.v, p, sizeof r.v); }
    static void storeu(float* p, const Reg& r) { std::memcpy(p, r.v, sizeof r.v); }
    static void set1(Reg& r, float x) {
        for (float& v : r.v) v = x;
    }
    static void broadcast(Reg& r, const float* p) { set1(r, *p); }
    static void mul(Reg& r, const Reg& a, const Reg& b) {  // r = a * b
        for (int i = 0; i < kWidth; i++) r.v[i] = a.v[i] * b.v[i];
    }
    static void fma(Reg& c, const Reg& a, const Reg& b) {  // c += a * b
        for (int i = 0; i < kWidth; i++) c.v[i] += a.v[i] * b.v[i];
    }
    // dst[q * ld_dst + r] = rows[r][q] for r, q < 8 (an 8 x 8 transpose; see transpose8_avx2).
    static void transpose8(const float* const* rows, float* dst, int64_t ld_dst) {
        float t[8][8];
        for (int r = 0; r < 8; r++)
            for (int q = 0; q < 8; q++) t[q][r] = rows[r][q];
        for (int q = 0; q < 8; q++)
            for (int r = 0; r < 8; r++) dst[q * ld_dst + r] = t[q][r];
    }
};

#if DYAD_GEMM_X86
// Reads 8 rows of 8 floats and writes them transposed as 8 rows of 8 floats at dst, dst + ld_dst, ...
// in that order, so with ld_dst < 8 each store overwrites the tail of the previous one (the packers use
// that for 6-row panels). 24 shuffles for 64 values instead of 64 scalar moves: the transposing packs
// (A stored (m, k), B stored (n, k)) run about 3x faster than element by element. Shared by the AVX2
// and AVX-512 paths (packing is not where the wider vectors pay).
__attribute__((target("avx2,fma"))) inline void transpose8_avx2(const float* const* rows, float* dst, int64_t ld_dst) {
    const __m256 r0 = _mm256_loadu_ps(rows[0]), r1 = _mm256_loadu_ps(rows[1]);
    const __m256 r2 = _mm256_loadu_ps(rows[2]), r3 = _mm256_loadu_ps(rows[3]);
    const __m256 r4 = _mm256_loadu_ps(rows[4]), r5 = _mm256_loadu_ps(rows[5]);
    const __m256 r6 = _mm256_loadu_ps(rows[6]), r7 = _mm256_loadu_ps(rows[7]);
    // Interleave pairs of rows, then pairs of pairs: within each 128-bit lane, column q of rows 0-3 and
    // of rows 4-7 end up together; the final permutes swap the lanes into place.
    const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst + 0 * ld_dst, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + 1 * ld_dst, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * ld_dst, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * ld_dst, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * ld_dst, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * ld_dst, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * ld_dst, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * ld_dst, _mm256_permute2f128_ps(u3, u7, 0x31));
}

// AVX2 + FMA (Haswell, Zen): 16 ymm registers. A 6 x 16 tile keeps 12 accumulators, 2 B vectors and one
// broadcast A value in registers; 12 independent FMA chains cover Zen 3's 2 FMA pipes x 4-5 cycles of
// latency. kc = 256: the B micro-panel is 256 x 16 x 4 B = 16 KiB and the A sliver 6 KiB, within the
// 32 KiB L1d. mc = 144: the A block is 144 KiB, a quarter to a third of a 512 KiB (Zen) or 256 KiB
// (Haswell) L2, leaving room for the streamed B panels and C. nc = 4096: a 4 MiB B block fits any L3.
struct Avx2 {
    static constexpr const char* kName = "avx2";
    static constexpr int kWidth = 8, kMr = 6;
    static constexpr int64_t kKc = 256, kMc = 144, kNc = 4096;
    using Reg = __m256;
#define DYAD_GEMM_AVX2 __attribute__((target("avx2,fma")))
    DYAD_GEMM_AVX2 static void zero(Reg& r) { r = _mm256_setzero_ps(); }
    DYAD_GEMM_AVX2 static void load(Reg& r, const float* p) { r = _mm256_load_ps(p); }  // packed: aligned
    DYAD_GEMM_AVX2 static void loadu(Reg& r, const float* p) { r = _mm256_loadu_ps(p); }
    DYAD_GEMM_AVX2 static void storeu(float* p, const Reg& r) { _mm256_storeu_ps(p, r); }
    DYAD_GEMM_AVX2 static void set1(Reg& r, float x) { r = _mm256_set1_ps(x); }
    DYAD_GEMM_AVX2 static void broadcast(Reg& r, const float* p) { r = _mm256_broadcast_ss(p); }
    DYAD_GEMM_AVX2 static void mul(Reg& r, const Reg& a, const Reg& b) { r = _mm256_mul_ps(a, b); }
    DYAD_GEMM_AVX2 static void fma(Reg& c, const Reg& a, const Reg& b) { c = _mm256_fmadd_ps(a, b, c); }
    DYAD_GEMM_AVX2 static void transpose8(const float* const* rows, float* dst, int64_t ld_dst) {
        transpose8_avx2(rows, dst, ld_dst);
    }
#undef DYAD_GEMM_AVX2
};

// AVX-512 (Skylake-SP and later, Zen 4): the same 6-row algorithm with 16-float vectors, a 6 x 32 tile.
// kc = 192 keeps the wider B micro-panel (192 x 32 x 4 B = 24 KiB) and the A sliver (4.5 KiB) within a
// 32 KiB L1d; mc = 144 gives a 108 KiB A block for the 1-2 MiB L2 of those cores.
struct Avx512 {
    static constexpr const char* kName = "avx512";
    static constexpr int kWidth = 16, kMr = 6;
    static constexpr int64_t kKc = 192, kMc = 144, kNc = 4096;
    using Reg = __m512;
#define DYAD_GEMM_AVX512 __attribute__((target("avx512f,avx2,fma")))
    DYAD_GEMM_AVX512 static void zero(Reg& r) { r = _mm512_setzero_ps(); }
    DYAD_GEMM_AVX512 static void load(Reg& r, const float* p) { r = _mm512_load_ps(p); }
    DYAD_GEMM_AVX512 static void loadu(Reg& r, const float* p) { r = _mm512_loadu_ps(p); }
    DYAD_GEMM_AVX512 static void storeu(float* p, const Reg& r) { _mm512_storeu_ps(p, r); }
    DYAD_GEMM_AVX512 static void set1(Reg& r, float x) { r = _mm512_set1_ps(x); }
    DYAD_GEMM_AVX512 static void broadcast(Reg& r, const float* p) { r = _mm512_set1_ps(*p); }
    DYAD_GEMM_AVX512 static void mul(Reg& r, const Reg& a, const Reg& b) { r = _mm512_mul_ps(a, b); }
    DYAD_GEMM_AVX512 static void fma(Reg& c, const Reg& a, const Reg& b) { c = _mm512_fmadd_ps(a, b, c); }
    DYAD_GEMM_AVX512 static void transpose8(const float* const* rows, float* dst, int64_t ld_dst) {
        transpose8_avx2(rows, dst, ld_dst);
    }
#undef DYAD_GEMM_AVX512
};
#endif  // DYAD_GEMM_X86

// ---------------------------------------------------------------------------- packing
// A panel of R rows (R = MR for A, NR for B) stored k-major: dst[p * R + r] for p < kb, r < R.

// Panel from R source rows that are contiguous along k: dst[p * R + r] = src[r * ld + p], rows past
// `rows` zero-filled. This is A stored (m, k) and B stored (n, k). Full panels go 8 x 8 blocks at a
// time through V::transpose8; for R = 6 the block's last two rows repeat row 5 and each 8-wide store
// spills 2 values into the next k step, which is written after it (the buffer has slack for the last).
template <class V, int R>
inline void pack_transposed(const float* src, int64_t ld, int64_t rows, int64_t kb, float* dst) {
    int64_t p = 0;
    if (rows == R) {
        const float* row[(R + 7) / 8 * 8];
        for (int r = 0; r < (R + 7) / 8 * 8; r++) row[r] = src + std::min(r, R - 1) * ld;
        for (; p + 8 <= kb; p += 8) {
            // R sequential streams at once are more than the prefetchers track: fetch 4 lines ahead.
            if (p % 16 == 0)
                for (int r = 0; r < R; r++) __builtin_prefetch(row[r] + p + 64);
            for (int r = 0; r < R; r += 8) {
                const float* block[8];
                for (int i = 0; i < 8; i++) block[i] = row[r + i] + p;
                V::transpose8(block, dst + p * R + r, R);
            }
        }
    }
    for (; p < kb; p++) {
        for (int64_t r = 0; r < rows; r++) dst[p * R + r] = src[r * ld + p];
        for (int64_t r = rows; r < R; r++) dst[p * R + r] = 0.0f;
    }
}

constexpr int64_t kPrefetchRows = 4;

// All panels of a block whose source has the values of one k contiguous: panel q gets
// dst[q * R * kb + p * R + r] = src[p * ld + q * R + r], columns past `cols` zero-filled. This is A stored
// (k, m) and B stored (k, n). The loop runs along the source rows: one sequential read per k instead of
// one R-wide column per panel, whose rows can be a page apart (B of a linear layer: 32 KiB).
template <int R>
inline void pack_direct(const float* src, int64_t ld, int64_t cols, int64_t kb, float* dst) {
    const int64_t full = cols / R, rest = cols % R;
    for (int64_t p = 0; p < kb; p++) {
        const float* row = src + p * ld;
        // Rows are short (a block's width) and far apart: the hardware prefetchers do not see the next
        // one coming, so ask for it a few rows ahead (prefetches past the end are harmless).
        if (p + kPrefetchRows < kb)
            for (int64_t j = 0; j < cols; j += 16) __builtin_prefetch(row + kPrefetchRows * ld + j);
        for (int64_t q = 0; q < full; q++) std::memcpy(dst + q * R * kb + p * R, row + q * R, R * sizeof(float));
        if (rest) {
            float* d = dst + full * R * kb + p * R;
            for (int64_t r = 0; r < rest; r++) d[r] = row[full * R + r];
            for (int64_t r = rest; r < R; r++) d[r] = 0.0f;
        }
    }
}

// Packed A block (mb x kb of op(A)): micro-panels of MR rows, rows past mb zero-filled so the
// micro-kernel always runs a full tile. a points at op(A)[0, 0] of the block.
template <class V>
inline void pack_a(const float* a, int64_t lda, bool trans, int64_t mb, int64_t kb, float* dst) {
    constexpr int MR = V::kMr;
    if (trans) {  // op(A)[i, p] = a[p * lda + i]
        pack_direct<MR>(a, lda, mb, kb, dst);
        return;
    }
    for (int64_t i = 0; i < mb; i += MR, dst += MR * kb)  // op(A)[i, p] = a[i * lda + p]
        pack_transposed<V, MR>(a + i * lda, lda, std::min<int64_t>(MR, mb - i), kb, dst);
}

// Packed B block (kb x nb of op(B)): micro-panels of NR columns, columns past nb zero-filled. b points
// at op(B)[0, 0] of the block.
template <class V>
inline void pack_b(const float* b, int64_t ldb, bool trans, int64_t kb, int64_t nb, float* dst) {
    constexpr int NR = 2 * V::kWidth;
    if (!trans) {  // op(B)[p, j] = b[p * ldb + j]
        pack_direct<NR>(b, ldb, nb, kb, dst);
        return;
    }
    for (int64_t j = 0; j < nb; j += NR, dst += NR * kb)  // op(B)[p, j] = b[j * ldb + p]
        pack_transposed<V, NR>(b + j * ldb, ldb, std::min<int64_t>(NR, nb - j), kb, dst);
}

// ---------------------------------------------------------------------------- micro-kernel
// C tile (mr x nr, at most MR x NR) = alpha * A sliver * B panel + beta * C tile, over kb. a: packed
// (kb, MR); b: packed (kb, NR); c: (mr, nr) with row stride ldc. beta == 0: C is written, never read.
template <class V>
inline void micro_kernel(int64_t kb, const float* a, const float* b, float* c, int64_t ldc, int64_t mr, int64_t nr,
                         float alpha, float beta) {
    constexpr int MR = V::kMr, W = V::kWidth, NR = 2 * W;
    using Reg = typename V::Reg;
    Reg acc0[MR], acc1[MR];  // columns [0, W) and [W, 2W) of each row; the compiler keeps them in registers
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) V::zero(acc0[i]), V::zero(acc1[i]);
    // Pull the C tile towards L1 while the k loop runs; it is needed only at the end.
    for (int64_t i = 0; i < mr; i++) __builtin_prefetch(c + i * ldc, 1);
    Reg b0, b1, ai;
#pragma GCC unroll 4
    for (int64_t p = 0; p < kb; p++) {
        V::load(b0, b), V::load(b1, b + W);
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            V::broadcast(ai, a + i);
            V::fma(acc0[i], ai, b0);
            V::fma(acc1[i], ai, b1);
        }
        a += MR;
        b += NR;
    }
    // alpha * acc (+ beta * C), into acc.
    Reg va, vb, ci;
    V::set1(va, alpha), V::set1(vb, beta);
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) V::mul(acc0[i], va, acc0[i]), V::mul(acc1[i], va, acc1[i]);
    if (mr == MR && nr == NR) {
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            float* row = c + i * ldc;
            if (beta != 0.0f) {
                V::loadu(ci, row), V::fma(acc0[i], vb, ci);
                V::loadu(ci, row + W), V::fma(acc1[i], vb, ci);
            }
            V::storeu(row, acc0[i]);
            V::storeu(row + W, acc1[i]);
        }
        return;
    }
    // Edge tile: spill it and copy the valid part.
    alignas(64) float tile[MR * NR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) V::storeu(tile + i * NR, acc0[i]), V::storeu(tile + i * NR + W, acc1[i]);
    for (int64_t i = 0; i < mr; i++)
        for (int64_t j = 0; j < nr; j++) {
            float& out = c[i * ldc + j];
            out = beta == 0.0f ? tile[i * NR + j] : tile[i * NR + j] + beta * out;
        }
}

// One packed A block times one packed B block into C (mb x nb, row stride ldc). The B micro-panel is the
// outer loop so it stays in L1 while the A slivers stream from L2.
template <class V>
inline void macro_kernel(int64_t mb, int64_t nb, int64_t kb, const float* apack, const float* bpack, float* c,
                         int64_t ldc, float alpha, float beta) {
    constexpr int MR = V::kMr, NR = 2 * V::kWidth;
    for (int64_t j = 0; j < nb; j += NR) {
        const float* bp = bpack + j * kb;
        for (int64_t i = 0; i < mb; i += MR)
            micro_kernel<V>(kb, apack + i * kb, bp, c + i * ldc + j, ldc, std::min<int64_t>(MR, mb - i),
                            std::min<int64_t>(NR, nb - j), alpha, beta);
    }
}

// ---------------------------------------------------------------------------- per-ISA entry points
// flatten inlines every template above into a function compiled for the ISA, so the intrinsics (and the
// compiler's own vectorisation of the packing loops) use that ISA's instructions.
using PackFn = void (*)(const float*, int64_t, bool, int64_t, int64_t, float*);
using MacroFn = void (*)(int64_t, int64_t, int64_t, const float*, const float*, float*, int64_t, float, float);

struct Isa {
    const char* name;
    int64_t mr, nr, kc, mc, nc;
    PackFn pack_a, pack_b;
    MacroFn macro;
};

template <class V>
constexpr Isa make_isa(PackFn pa, PackFn pb, MacroFn mk) {
    return {V::kName, V::kMr, 2 * V::kWidth, V::kKc, V::kMc, V::kNc, pa, pb, mk};
}

__attribute__((flatten)) void pack_a_portable(const float* a, int64_t lda, bool t, int64_t mb, int64_t kb, float* d) {
    pack_a<Portable>(a, lda, t, mb, kb, d);
}
__attribute__((flatten)) void pack_b_portable(const float* b, int64_t ldb, bool t, int64_t kb, int64_t nb, float* d) {
    pack_b<Portable>(b, ldb, t, kb, nb, d);
}
__attribute__((flatten)) void macro_portable(int64_t mb, int64_t nb, int64_t kb, const float* ap, const float* bp,
                                             float* c, int64_t ldc, float alpha, float beta) {
    macro_kernel<Portable>(mb, nb, kb, ap, bp, c, ldc, alpha, beta);
}

#if DYAD_GEMM_X86
__attribute__((flatten, target("avx2,fma"))) void pack_a_avx2(const float* a, int64_t lda, bool t, int64_t mb,
                                                              int64_t kb, float* d) {
    pack_a<Avx2>(a, lda, t, mb, kb, d);
}
__attribute__((flatten, target("avx2,fma"))) void pack_b_avx2(const float* b, int64_t ldb, bool t, int64_t kb,
                                                              int64_t nb, float* d) {
    pack_b<Avx2>(b, ldb, t, kb, nb, d);
}
__attribute__((flatten, target("avx2,fma"))) void macro_avx2(int64_t mb, int64_t nb, int64_t kb, const float* ap,
                                                             const float* bp, float* c, int64_t ldc, float alpha,
                                                             float beta) {
    macro_kernel<Avx2>(mb, nb, kb, ap, bp, c, ldc, alpha, beta);
}

__attribute__((flatten, target("avx512f,avx2,fma"))) void pack_a_avx512(const float* a, int64_t lda, bool t, int64_t mb,
                                                                        int64_t kb, float* d) {
    pack_a<Avx512>(a, lda, t, mb, kb, d);
}
__attribute__((flatten, target("avx512f,avx2,fma"))) void pack_b_avx512(const float* b, int64_t ldb, bool t, int64_t kb,
                                                                        int64_t nb, float* d) {
    pack_b<Avx512>(b, ldb, t, kb, nb, d);
}
__attribute__((flatten, target("avx512f,avx2,fma"))) void macro_avx512(int64_t mb, int64_t nb, int64_t kb,
                                                                       const float* ap, const float* bp, float* c,
                                                                       int64_t ldc, float alpha, float beta) {
    macro_kernel<Avx512>(mb, nb, kb, ap, bp, c, ldc, alpha, beta);
}
#endif  // DYAD_GEMM_X86

// The best ISA this CPU runs, chosen once. DYAD_GEMM_ISA=avx2 or =portable selects a lower one (to test
// or compare them on an AVX-512 machine); a request the CPU cannot run is ignored.
const Isa& pick_isa() {
    static const Isa portable = make_isa<Portable>(pack_a_portable, pack_b_portable, macro_portable);
#if DYAD_GEMM_X86
    static const Isa avx2 = make_isa<Avx2>(pack_a_avx2, pack_b_avx2, macro_avx2);
    static const Isa avx512 = make_isa<Avx512>(pack_a_avx512, pack_b_avx512, macro_avx512);
    static const Isa& chosen = []() -> const Isa& {
        __builtin_cpu_init();
        const bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        const bool has_avx512 = has_avx2 && __builtin_cpu_supports("avx512f");
        const char* want = std::getenv("DYAD_GEMM_ISA");
        const bool cap_portable = want && std::strcmp(want, "portable") == 0;
        const bool cap_avx2 = want && std::strcmp(want, "avx2") == 0;
        if (has_avx512 && !cap_portable && !cap_avx2) return avx512;
        if (has_avx2 && !cap_portable) return avx2;
        return portable;
    }();
    return chosen;
#else
    return portable;
#endif
}

// ---------------------------------------------------------------------------- driver
// Block sizes for one thread's (m x n x k) problem. Equal blocks (rounded to the micro-tile) instead of
// full blocks plus a thin remainder: k = 259 runs as 2 x 130, not 256 + 3, which would spend a whole pass
// over C on 3 FMAs per element.
struct Blocks {
    int64_t kc, mc, nc;
    bool one_a_block;  // m <= mc: the loop order of blocked_gemm's first branch
};

// Columns of B packed at a time when all of op(A)'s rows fit one A block (see blocked_gemm): rows of
// 4 KiB, long enough for the prefetchers, in a B block of at most 1 MiB that is consumed right away.
constexpr int64_t kNarrowNc = 1024;

Blocks blocks(const Isa& isa, int64_t m, int64_t n, int64_t k) {
    Blocks b;
    b.kc = ceil_div(k, ceil_div(k, isa.kc));
    b.mc = round_up(ceil_div(m, ceil_div(m, isa.mc)), isa.mr);
    b.one_a_block = m <= b.mc;
    b.nc =
        b.one_a_block ? std::min(round_up(n, isa.nr), kNarrowNc) : round_up(ceil_div(n, ceil_div(n, isa.nc)), isa.nr);
    return b;
}

// Floats of packing space one thread needs for a problem of at most m x n x k: an A block and a B block,
// each rounded to 64 bytes. Every Blocks above fits: kc <= min(isa.kc, k), mc <= min(isa.mc, m rounded up
// to MR), nc <= min(isa.nc, n rounded up to NR). The A block has slack for the packing's spill.
struct PackSizes {
    int64_t a, b;
};
PackSizes pack_sizes(const Isa& isa, int64_t m, int64_t n, int64_t k) {
    const int64_t kc = std::min(isa.kc, k);
    return {round_up(std::min(isa.mc, round_up(m, isa.mr)) * kc + 16, 16),
            round_up(kc * std::min(isa.nc, round_up(n, isa.nr)), 16)};
}

// C = alpha * op(A) * op(B) + beta * C for every batch, on the calling thread, with s.k > 0. apack and
// bpack hold pack_sizes(isa, s.m, s.n, s.k).
void blocked_gemm(const Isa& isa, const GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c,
                  float* apack, float* bpack) {
    const Blocks bl = blocks(isa, s.m, s.n, s.k);
    for (int64_t p = 0; p < s.batch; p++) {
        const float* ap = a + p * s.stride_a;
        const float* bp = b + p * s.stride_b;
        float* cp = c + p * s.stride_c;
        // op(A)[i0, k0] and op(B)[k0, j0] in the stored layouts.
        auto a_at = [&](int64_t i0, int64_t k0) { return s.trans_a ? ap + k0 * s.lda + i0 : ap + i0 * s.lda + k0; };
        auto b_at = [&](int64_t k0, int64_t j0) { return s.trans_b ? bp + j0 * s.ldb + k0 : bp + k0 * s.ldb + j0; };
        if (bl.one_a_block) {
            // One A block (a linear layer's batch, a conv's output channels): each B value is used only
            // m times, so packing B costs a good part of the FMAs' time. Pack A once per k block and B in
            // narrow blocks consumed right after packing, instead of a round trip through L3.
            for (int64_t k0 = 0; k0 < s.k; k0 += bl.kc) {
                const int64_t kb = std::min(bl.kc, s.k - k0);
                const float beta_k = k0 == 0 ? beta : 1.0f;  // later k blocks add to what the first wrote
                isa.pack_a(a_at(0, k0), s.lda, s.trans_a, s.m, kb, apack);
                for (int64_t j0 = 0; j0 < s.n; j0 += bl.nc) {
                    const int64_t nb = std::min(bl.nc, s.n - j0);
                    isa.pack_b(b_at(k0, j0), s.ldb, s.trans_b, kb, nb, bpack);
                    isa.macro(s.m, nb, kb, apack, bpack, cp + j0, s.ldc, alpha, beta_k);
                }
            }
            continue;
        }
        // The general case: a B block (kc x nc, in L3) is reused by every A block (mc x kc, in L2).
        for (int64_t j0 = 0; j0 < s.n; j0 += bl.nc) {
            const int64_t nb = std::min(bl.nc, s.n - j0);
            for (int64_t k0 = 0; k0 < s.k; k0 += bl.kc) {
                const int64_t kb = std::min(bl.kc, s.k - k0);
                const float beta_k = k0 == 0 ? beta : 1.0f;
                isa.pack_b(b_at(k0, j0), s.ldb, s.trans_b, kb, nb, bpack);
                for (int64_t i0 = 0; i0 < s.m; i0 += bl.mc) {
                    const int64_t mb = std::min(bl.mc, s.m - i0);
                    isa.pack_a(a_at(i0, k0), s.lda, s.trans_a, mb, kb, apack);
                    isa.macro(mb, nb, kb, apack, bpack, cp + i0 * s.ldc + j0, s.ldc, alpha, beta_k);
                }
            }
        }
    }
}

// How the threads split one C: a grid of tm x tn tiles of whole micro-tiles. Each thread runs the
// sequential blocked GEMM on its tile with its own packed copies of the A rows and B columns it needs, so
// no packed block is shared and no barrier is needed. Chosen to minimise the largest tile's cost in
// cycles: its FMAs (16 per cycle with 2 AVX2 pipes) plus its packing (about 4 values per cycle, A once
// per nc block of columns). Fewer than `threads` tiles when that is cheaper (a tiny m or n).
struct Grid {
    int64_t tm = 1, tn = 1;
    int64_t rows = 0, cols = 0;  // of the largest tile
};

Grid choose_grid(const Isa& isa, int64_t m, int64_t n, int64_t k, int threads) {
    const int64_t mtiles = ceil_div(m, isa.mr), ntiles = ceil_div(n, isa.nr);
    Grid best;
    double best_cost = -1;
    for (int64_t tm = 1; tm <= threads; tm++) {
        const int64_t tn = threads / tm;
        const int64_t rows = std::min(ceil_div(mtiles, tm) * isa.mr, m),
                      cols = std::min(ceil_div(ntiles, tn) * isa.nr, n);
        const double cost = double(rows) * double(cols) * double(k) / 16.0 +
                            double(rows * ceil_div(cols, isa.nc) + cols) * double(k) / 4.0;
        if (best_cost < 0 || cost < best_cost) best_cost = cost, best = {tm, tn, rows, cols};
    }
    return best;
}

// The share of [0, tiles) that part idx of parts gets, as a range of [0, limit) in units of `tile`:
// the first (tiles % parts) parts take one tile more.
void tile_range(int64_t tiles, int64_t parts, int64_t idx, int64_t tile, int64_t limit, int64_t& lo, int64_t& len) {
    const int64_t base = tiles / parts, extra = tiles % parts;
    const int64_t first = idx * base + std::min(idx, extra), count = base + (idx < extra ? 1 : 0);
    lo = std::min(first * tile, limit);
    len = std::min((first + count) * tile, limit) - lo;
}

// Below this many multiply-adds (64^3) one thread finishes before a second one would have started, and
// each thread should get at least half of that.
constexpr int64_t kParallelMinMacs = int64_t(1) << 18;

}  // namespace

void gemm(const GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c) {
    if (s.m <= 0 || s.n <= 0 || s.batch <= 0) return;
    if (s.k <= 0) {  // C = beta * C, or 0 (without reading C) when beta == 0
        for (int64_t p = 0; p < s.batch; p++) {
            float* cp = c + p * s.stride_c;
            for (int64_t i = 0; i < s.m; i++)
                for (int64_t j = 0; j < s.n; j++) cp[i * s.ldc + j] = beta == 0.0f ? 0.0f : beta * cp[i * s.ldc + j];
        }
        return;
    }
    const Isa& isa = pick_isa();
    thread_local Workspace workspace;
    const int64_t macs = s.batch * s.m * s.n * s.k;
    int threads = 1;
#ifdef _OPENMP
    if (macs >= kParallelMinMacs && !omp_in_parallel())
        threads = int(std::min<int64_t>(omp_get_max_threads(), macs / (kParallelMinMacs / 2)));
#endif
    if (threads == 1) {
        const PackSizes ps = pack_sizes(isa, s.m, s.n, s.k);
        float* buf = workspace.get(ps.a + ps.b);
        blocked_gemm(isa, s, alpha, a, b, beta, c, buf, buf + ps.a);
        return;
    }
    // Independent batches (each has its own C) that divide evenly, or many of them: whole batches per
    // thread. Otherwise (one batch, stride_c == 0 accumulation, or few uneven batches) the threads split
    // each C, and every thread walks the batches in order over its own tile, which keeps the
    // accumulation order of stride_c == 0.
    const bool by_batch = s.stride_c != 0 && s.batch > 1 && (s.batch % threads == 0 || s.batch >= 4 * threads);
    if (by_batch) {
        const PackSizes ps = pack_sizes(isa, s.m, s.n, s.k);
        float* buf = workspace.get((ps.a + ps.b) * threads);
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t p = 0; p < s.batch; p++) {
#ifdef _OPENMP
            float* mine = buf + (ps.a + ps.b) * omp_get_thread_num();
#else
            float* mine = buf;
#endif
            GemmShape one = s;
            one.batch = 1;
            blocked_gemm(isa, one, alpha, a + p * s.stride_a, b + p * s.stride_b, beta, c + p * s.stride_c, mine,
                         mine + ps.a);
        }
        return;
    }
    const Grid g = choose_grid(isa, s.m, s.n, s.k, threads);
    const PackSizes ps = pack_sizes(isa, g.rows, g.cols, s.k);
    float* buf = workspace.get((ps.a + ps.b) * g.tm * g.tn);
    const int64_t mtiles = ceil_div(s.m, isa.mr), ntiles = ceil_div(s.n, isa.nr);
#pragma omp parallel num_threads(int(g.tm * g.tn))
    {
#ifdef _OPENMP
        const int64_t t = omp_get_thread_num();
#else
        const int64_t t = 0;
#endif
        int64_t i0, mi, j0, nj;
        tile_range(mtiles, g.tm, t / g.tn, isa.mr, s.m, i0, mi);
        tile_range(ntiles, g.tn, t % g.tn, isa.nr, s.n, j0, nj);
        if (mi > 0 && nj > 0) {
            GemmShape sub = s;
            sub.m = mi, sub.n = nj;
            float* mine = buf + (ps.a + ps.b) * t;
            blocked_gemm(isa, sub, alpha, s.trans_a ? a + i0 : a + i0 * s.lda, s.trans_b ? b + j0 * s.ldb : b + j0,
                         beta, c + i0 * s.ldc + j0, mine, mine + ps.a);
        }
    }
}

const char* gemm_isa() { return pick_isa().name; }

}  // namespace dyad::omp
