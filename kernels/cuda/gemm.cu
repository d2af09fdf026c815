// GEMM on the GPU: the cuBLAS wrapper and dyad's own tiled SGEMM, both for the row-major, batched
// GemmShape contract (C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b]; beta == 0 never reads C).
//
// cuBLAS is column-major, and a row-major (m, n) matrix with row stride ldc is the column-major (n, m)
// matrix C^T with leading dimension ldc, so the row-major product is computed as C^T = op(B)^T op(A)^T:
// cuBLAS's first operand is B (transposed exactly when trans_b), its second is A (when trans_a), and its
// (m, n) are our (n, m). The compute type follows math(): strict FP32, TF32 or bf16 tensor cores.
//
// The tiled kernel: a 128x128 tile of C per block of 256 threads, each thread an 8x8 register tile (two
// 4x4 quadrants 64 rows / columns apart, so its shared-memory reads are float4 and conflict-free). k is
// walked in steps of 8 through two shared-memory buffers: while the block multiplies one step, each
// thread already holds the next step's four A and four B values in registers (read from global memory
// as one float4 where the layout and alignment allow, else as guarded scalars with zeros outside the
// matrix), and stores them into the other buffer afterwards, so there is one barrier per step. A and B
// tiles are stored k-major (As[k][m], Bs[k][n]) with rows padded to 132 floats, which keeps the
// transposing stores free of bank conflicts. Each C element is one fmaf chain over k in order, then
// alpha * acc (+ beta * C): deterministic. Tiles are numbered in groups of 8 tile rows so that blocks
// running together share A and B panels in L2; batches run over blockIdx.z.
//
// stride_c == 0 with batch > 1 (the batches accumulate into one C, in order) is never one batched call,
// whose batches would race on C: both paths loop over the batches on the stream instead.
//
// bfloat16 (A, B and C bfloat16; alpha, beta and the arithmetic float): cuBLAS with CUDA_R_16BF operands
// and CUBLAS_COMPUTE_32F whatever math() says (math()'s faster compute types round float operands to TF32
// or bfloat16, which these already are), with reduced-precision reductions disallowed so that split-k
// partial sums stay float and C is rounded once. Batches that accumulate into one C (stride_c == 0) run one
// call each into a float copy of C (stream-ordered scratch memory), rounded into C once at the end, as the
// float reference accumulates them. Shapes cuBLAS does not take (k == 0, sizes past int, short leading
// dimensions) run a plain kernel: one thread per element of C, float dot products in k order. There is no
// tiled bfloat16 kernel: gemm_kernel() applies to float only.
#include <climits>
#include <cstdint>
#include <type_traits>

#include "../gemm.h"
#include "context.h"

namespace dyad::cuda {

namespace {

// ---------------------------------------------------------------- tiled kernel
constexpr int kTile = 128;         // BM = BN
constexpr int kStep = 8;           // BK
constexpr int kThreads = 256;      // 16 x 16 threads, 8 x 8 results each
constexpr int kLds = kTile + 4;    // padded row of a shared tile (floats; a multiple of 4)
constexpr int64_t kGroupRows = 8;  // tile rows per group in the block order
constexpr unsigned kMaxGridZ = 65535;

struct TiledArgs {
    int64_t batch, m, n, k;
    int64_t lda, ldb, ldc;
    int64_t stride_a, stride_b, stride_c;
    int64_t tiles_m, tiles_n;
    float alpha, beta;
    bool vec_c;  // C rows may be written as float4
};

// One operand's share of the shared tiles: each thread brings four values per k step. Along (the
// values run along k, the stored rows are op's rows: A untransposed, B transposed): thread t takes row
// t / 2 of the tile, k offsets (t % 2) * 4 + 0..3. Otherwise (the stored rows run along k): k row t / 32,
// columns (t % 32) * 4 + 0..3. Values outside the matrix read as zeros. Vec: rows start 16-byte aligned,
// so four in-range values are one float4 load.
template <bool Along, bool Vec>
struct TileLoader {
    const float* p;  // this thread's first value in the current step
    int64_t next;    // elements from one step to the next
    int koff;        // k offset of that value within a step (0..7)
    unsigned ok;     // Along: 0xF when the row is inside, else 0. Otherwise: bit q set when column + q is inside

    __device__ __forceinline__ void init(const float* base, int64_t ld, int64_t first, int64_t extent) {
        const int t = threadIdx.x;
        if (Along) {
            const int64_t row = first + (t >> 1);
            koff = (t & 1) * 4;
            p = base + row * ld + koff;
            next = kStep;
            ok = row < extent ? 0xFu : 0u;
        } else {
            const int64_t col = first + (t & 31) * 4;
            koff = t >> 5;
            p = base + koff * ld + col;
            next = kStep * ld;
            ok = 0;
#pragma unroll
            for (int q = 0; q < 4; q++)
                if (col + q < extent) ok |= 1u << q;
        }
    }
    // klim: how many k values the step has (kStep, or fewer in a last partial step).
    __device__ __forceinline__ void load(float r[4], int klim) const {
        const bool all = Along ? (ok != 0 && koff + 3 < klim) : (ok == 0xFu && koff < klim);
        if (Vec && all) {
            const float4 v = __ldg(reinterpret_cast<const float4*>(p));
            r[0] = v.x, r[1] = v.y, r[2] = v.z, r[3] = v.w;
        } else {
#pragma unroll
            for (int q = 0; q < 4; q++) {
                const bool in = Along ? (ok != 0 && koff + q < klim) : (koff < klim && ((ok >> q) & 1u));
                r[q] = in ? __ldg(p + q) : 0.0f;
            }
        }
    }
    __device__ __forceinline__ void advance() { p += next; }
};

// Stores a TileLoader's four values into a k-major shared tile s[kStep][kLds]. Along: they go to four
// rows of s in one column (the transposing store, conflict-free thanks to the padded rows); otherwise
// one float4 into one row.
template <bool Along>
__device__ __forceinline__ void store_tile(float (*s)[kLds], const float r[4]) {
    const int t = threadIdx.x;
    if (Along) {
        const int col = t >> 1, row = (t & 1) * 4;
#pragma unroll
        for (int q = 0; q < 4; q++) s[row + q][col] = r[q];
    } else {
        const int row = t >> 5, col = (t & 31) * 4;
        *reinterpret_cast<float4*>(&s[row][col]) = make_float4(r[0], r[1], r[2], r[3]);
    }
}

// The first row and column of the block's 128x128 tile of C. Blocks are numbered through groups of
// kGroupRows tile rows, column by column inside a group, so blocks running together reuse the same few
// A panels and B panels from L2. (Recomputed where needed rather than kept in registers.)
__device__ __forceinline__ void tile_origin(const TiledArgs& g, int64_t& m0, int64_t& n0) {
    const int64_t tile = blockIdx.x;
    const int64_t per_group = kGroupRows * g.tiles_n;
    const int64_t first_row = (tile / per_group) * kGroupRows;
    const int64_t group_rows = g.tiles_m - first_row < kGroupRows ? g.tiles_m - first_row : kGroupRows;
    const int64_t in_group = tile % per_group;
    m0 = (first_row + in_group % group_rows) * kTile;
    n0 = (in_group / group_rows) * kTile;
}

template <bool TA, bool TB, bool VA, bool VB>
__global__ void __launch_bounds__(kThreads, 2)
    sgemm_tiled_kernel(TiledArgs g, const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ c) {
    __shared__ __align__(16) float as[2][kStep][kLds];
    __shared__ __align__(16) float bs[2][kStep][kLds];

    // This thread's results: rows ty*4 + 0..3 and 64 + ty*4 + 0..3 of the tile, columns tx*4 + 0..3 and
    // 64 + tx*4 + 0..3. A warp covers 4 ty by 8 tx, so each of its float4 reads of a shared row touches
    // at most 128 contiguous bytes.
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int ty = (warp >> 1) * 4 + (lane >> 3);
    const int tx = (warp & 1) * 8 + (lane & 7);
    const int64_t steps = (g.k + kStep - 1) / kStep;
    const int last = steps > 0 ? int(g.k - (steps - 1) * kStep) : 0;  // k values in the last step (1..8)

    for (int64_t bz = blockIdx.z; bz < g.batch; bz += gridDim.z) {
        float acc[8][8];
#pragma unroll
        for (int i = 0; i < 8; i++)
#pragma unroll
            for (int j = 0; j < 8; j++) acc[i][j] = 0.0f;

        TileLoader<!TA, VA> la;
        TileLoader<TB, VB> lb;
        int64_t m0, n0;
        tile_origin(g, m0, n0);
        la.init(a + bz * g.stride_a, g.lda, m0, g.m);
        lb.init(b + bz * g.stride_b, g.ldb, n0, g.n);
        float ra[4], rb[4];
        if (steps > 0) {
            la.load(ra, steps == 1 ? last : kStep);
            lb.load(rb, steps == 1 ? last : kStep);
            store_tile<!TA>(as[0], ra);
            store_tile<TB>(bs[0], rb);
        }
        __syncthreads();

        for (int64_t st = 0; st < steps; st++) {
            const int cur = int(st & 1);
            const bool more = st + 1 < steps;
            if (more) {  // the next step's values travel while this one is multiplied
                const int klim = st + 2 == steps ? last : kStep;
                la.advance();
                lb.advance();
                la.load(ra, klim);
                lb.load(rb, klim);
            }
#pragma unroll
            for (int kk = 0; kk < kStep; kk++) {
                const float4 a0 = *reinterpret_cast<const float4*>(&as[cur][kk][ty * 4]);
                const float4 a1 = *reinterpret_cast<const float4*>(&as[cur][kk][64 + ty * 4]);
                const float4 b0 = *reinterpret_cast<const float4*>(&bs[cur][kk][tx * 4]);
                const float4 b1 = *reinterpret_cast<const float4*>(&bs[cur][kk][64 + tx * 4]);
                const float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
                const float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
                for (int i = 0; i < 8; i++)
#pragma unroll
                    for (int j = 0; j < 8; j++) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
            }
            if (more) {
                // The other buffer was last read in the previous step, before the barrier that ended it.
                store_tile<!TA>(as[cur ^ 1], ra);
                store_tile<TB>(bs[cur ^ 1], rb);
            }
            __syncthreads();
        }

        // Epilogue: alpha * acc (+ beta * C); C is read only when beta != 0. Offsets inside the tile are
        // ints; rows_in / cols_in are how many of the tile's rows and columns are inside C.
        tile_origin(g, m0, n0);
        const int rows_in = g.m - m0 < kTile ? int(g.m - m0) : kTile;
        const int cols_in = g.n - n0 < kTile ? int(g.n - n0) : kTile;
        float* ctile = c + bz * g.stride_c + m0 * g.ldc + n0;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            const int row = i < 4 ? ty * 4 + i : 64 + ty * 4 + (i - 4);
            if (row >= rows_in) continue;
            float* crow = ctile + row * g.ldc;
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const int col = h * 64 + tx * 4;
                float v[4];
#pragma unroll
                for (int q = 0; q < 4; q++) v[q] = g.alpha * acc[i][h * 4 + q];
                if (g.vec_c && col + 3 < cols_in) {
                    float4* p = reinterpret_cast<float4*>(crow + col);
                    if (g.beta != 0.0f) {
                        const float4 old = *p;
                        v[0] += g.beta * old.x, v[1] += g.beta * old.y, v[2] += g.beta * old.z, v[3] += g.beta * old.w;
                    }
                    *p = make_float4(v[0], v[1], v[2], v[3]);
                } else {
#pragma unroll
                    for (int q = 0; q < 4; q++)
                        if (col + q < cols_in) crow[col + q] = g.beta != 0.0f ? v[q] + g.beta * crow[col + q] : v[q];
                }
            }
        }
        // The next batch's first stores into as[0] / bs[0] come after every thread's last read of them:
        // the step loop ends on a barrier (and with no steps nothing was read).
    }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Whether an operand's rows may be read as float4: 16-byte aligned start, and every row and batch start
// at a multiple of 4 floats.
bool vectorisable(const void* p, int64_t ld, int64_t stride, int64_t batch) {
    return aligned16(p) && ld % 4 == 0 && (batch == 1 || stride % 4 == 0);
}

template <bool TA, bool TB>
void launch_tiled_t(const TiledArgs& g, bool va, bool vb, const float* a, const float* b, float* c) {
    const int64_t tiles = g.tiles_m * g.tiles_n;
    if (tiles > INT_MAX)
        throw CudaError(::dyad::detail::str("gemm_tiled: C of ", g.m, "x", g.n, " has too many tiles"));
    const dim3 grid(unsigned(tiles), 1, unsigned(std::min<int64_t>(g.batch, kMaxGridZ)));
    if (va && vb)
        sgemm_tiled_kernel<TA, TB, true, true><<<grid, kThreads, 0, stream()>>>(g, a, b, c);
    else if (va)
        sgemm_tiled_kernel<TA, TB, true, false><<<grid, kThreads, 0, stream()>>>(g, a, b, c);
    else if (vb)
        sgemm_tiled_kernel<TA, TB, false, true><<<grid, kThreads, 0, stream()>>>(g, a, b, c);
    else
        sgemm_tiled_kernel<TA, TB, false, false><<<grid, kThreads, 0, stream()>>>(g, a, b, c);
    DYAD_CUDA_CHECK_LAUNCH();
}

// One launch over `batch` batches of s (s.stride_c != 0, or batch == 1).
void launch_tiled(const GemmShape& s, int64_t batch, float alpha, const float* a, const float* b, float beta,
                  float* c) {
    TiledArgs g;
    g.batch = batch, g.m = s.m, g.n = s.n, g.k = s.k;
    g.lda = s.lda, g.ldb = s.ldb, g.ldc = s.ldc;
    g.stride_a = s.stride_a, g.stride_b = s.stride_b, g.stride_c = s.stride_c;
    g.tiles_m = (s.m + kTile - 1) / kTile, g.tiles_n = (s.n + kTile - 1) / kTile;
    g.alpha = alpha, g.beta = beta;
    g.vec_c = vectorisable(c, s.ldc, s.stride_c, batch);
    const bool va = vectorisable(a, s.lda, s.stride_a, batch), vb = vectorisable(b, s.ldb, s.stride_b, batch);
    if (!s.trans_a && !s.trans_b)
        launch_tiled_t<false, false>(g, va, vb, a, b, c);
    else if (!s.trans_a && s.trans_b)
        launch_tiled_t<false, true>(g, va, vb, a, b, c);
    else if (s.trans_a && !s.trans_b)
        launch_tiled_t<true, false>(g, va, vb, a, b, c);
    else
        launch_tiled_t<true, true>(g, va, vb, a, b, c);
}

// ---------------------------------------------------------------- cuBLAS
cublasComputeType_t compute_type() {
    switch (math()) {
        case Math::tf32:
            return CUBLAS_COMPUTE_32F_FAST_TF32;
        case Math::bf16:
            return CUBLAS_COMPUTE_32F_FAST_16BF;
        case Math::fp32:
        default:
            return CUBLAS_COMPUTE_32F;
    }
}

bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

// Whether cuBLAS accepts the shape: int sizes, and leading dimensions at least the column-major row count
// of each stored matrix (B stored (k, n) is column-major (n, k): ldb >= n; (n, k) when trans_b: ldb >= k).
bool cublas_accepts(const GemmShape& s) {
    const int64_t need_a = s.trans_a ? s.m : s.k, need_b = s.trans_b ? s.k : s.n;
    return fits_int(s.m) && fits_int(s.n) && fits_int(s.k) && fits_int(s.lda) && fits_int(s.ldb) && fits_int(s.ldc) &&
           s.k > 0 && s.lda >= std::max<int64_t>(1, need_a) && s.ldb >= std::max<int64_t>(1, need_b) &&
           s.ldc >= std::max<int64_t>(1, s.n);
}

// One strided-batched cublasGemmStridedBatchedEx (in chunks of kMaxGridZ batches) over `batch` batches: A
// and B of type AB, C of type CT (float or bfloat16 each), computed as `compute` under `math_mode`.
template <typename AB, typename CT>
void cublas_strided(const GemmShape& s, int64_t batch, float alpha, const AB* a, const AB* b, float beta, CT* c,
                    cublasComputeType_t compute, cublasMath_t math_mode) {
    const cudaDataType ab_type = std::is_same_v<AB, float> ? CUDA_R_32F : CUDA_R_16BF;
    const cudaDataType c_type = std::is_same_v<CT, float> ? CUDA_R_32F : CUDA_R_16BF;
    cublasHandle_t h = cublas();
    DYAD_CUBLAS_CHECK(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST));
    DYAD_CUBLAS_CHECK(cublasSetMathMode(h, math_mode));
    const cublasOperation_t op_b = s.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_a = s.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    for (int64_t first = 0; first < batch; first += kMaxGridZ) {
        const int64_t count = std::min<int64_t>(batch - first, kMaxGridZ);
        DYAD_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
            h, op_b, op_a, int(s.n), int(s.m), int(s.k), &alpha, b + first * s.stride_b, ab_type, int(s.ldb),
            static_cast<long long>(s.stride_b), a + first * s.stride_a, ab_type, int(s.lda),
            static_cast<long long>(s.stride_a), &beta, c + first * s.stride_c, c_type, int(s.ldc),
            static_cast<long long>(s.stride_c), int(count), compute, CUBLAS_GEMM_DEFAULT));
    }
}

// The float GEMM's call: float operands, math() as compute type (default math: TF32 only where the
// compute type asks for it).
void cublas_batches(const GemmShape& s, int64_t batch, float alpha, const float* a, const float* b, float beta,
                    float* c) {
    cublas_strided(s, batch, alpha, a, b, beta, c, compute_type(), CUBLAS_DEFAULT_MATH);
}

// ---------------------------------------------------------------- bfloat16
constexpr cublasMath_t kBf16Math =
    static_cast<cublasMath_t>(CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION);

// One thread per element of C (grid-stride) for the shapes cuBLAS does not take: each dot product in
// float in k order, then alpha * acc (+ beta * C, C read only when beta != 0). With shared_c (stride_c ==
// 0, batch > 1) the thread runs the batches in order on its element held in float. Rounded once.
__global__ void gemm_bf16_plain_kernel(GemmShape s, bool shared_c, float alpha, const bfloat16* __restrict__ a,
                                       const bfloat16* __restrict__ b, float beta, bfloat16* __restrict__ c) {
    const int64_t mn = s.m * s.n, total = (shared_c ? 1 : s.batch) * mn;
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
        const int64_t pc = i / mn, row = (i % mn) / s.n, col = i % s.n;
        bfloat16* out = c + pc * s.stride_c + row * s.ldc + col;
        const int64_t p0 = shared_c ? 0 : pc, p1 = shared_c ? s.batch : pc + 1;
        float v = beta != 0.0f ? float(*out) : 0.0f;
        for (int64_t p = p0; p < p1; p++) {
            const bfloat16* ap = a + p * s.stride_a;
            const bfloat16* bp = b + p * s.stride_b;
            float acc = 0.0f;
            for (int64_t l = 0; l < s.k; l++) {
                const float av = float(s.trans_a ? ap[l * s.lda + row] : ap[row * s.lda + l]);  // op(A)[row, l]
                const float bv = float(s.trans_b ? bp[col * s.ldb + l] : bp[l * s.ldb + col]);  // op(B)[l, col]
                acc = fmaf(av, bv, acc);
            }
            v = beta != 0.0f ? alpha * acc + beta * v : alpha * acc;
        }
        *out = bfloat16(v);
    }
}

// dst (m x n, row stride n, float) = src (m x n, row stride ld) widened.
__global__ void widen_kernel(float* __restrict__ dst, const bfloat16* __restrict__ src, int64_t m, int64_t n,
                             int64_t ld) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < m * n; i += int64_t(gridDim.x) * blockDim.x)
        dst[i] = float(src[(i / n) * ld + i % n]);
}

// dst (m x n, row stride ld) = src (m x n, row stride n, float) rounded.
__global__ void narrow_kernel(bfloat16* __restrict__ dst, const float* __restrict__ src, int64_t m, int64_t n,
                              int64_t ld) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < m * n; i += int64_t(gridDim.x) * blockDim.x)
        dst[(i / n) * ld + i % n] = bfloat16(src[i]);
}

// The bfloat16 GEMM's call: bfloat16 A and B, C bfloat16 (or float for the float copy of a shared C),
// float accumulation whatever math() says.
template <typename CT>
void cublas_bf16_batches(const GemmShape& s, int64_t batch, float alpha, const bfloat16* a, const bfloat16* b,
                         float beta, CT* c) {
    cublas_strided(s, batch, alpha, a, b, beta, c, CUBLAS_COMPUTE_32F, kBf16Math);
}

// Batches accumulating into one C (stride_c == 0, batch > 1) on cuBLAS: C widened into float scratch
// memory (when beta != 0; otherwise it is not read), one call per batch in order, then rounded into C.
void cublas_bf16_shared_c(const GemmShape& s, float alpha, const bfloat16* a, const bfloat16* b, float beta,
                          bfloat16* c) {
    const int dev = current_device();
    const size_t bytes = size_t(s.m * s.n) * sizeof(float);
    struct Scratch {  // freed on the stream after the work queued so far (also when a call throws)
        void* p;
        size_t bytes;
        int dev;
        ~Scratch() { free_device(p, bytes, dev); }
    } tmp{malloc_device(bytes, dev), bytes, dev};
    float* cf = static_cast<float*>(tmp.p);
    if (beta != 0.0f) {
        widen_kernel<<<grid_for(s.m * s.n), kBlock, 0, stream()>>>(cf, c, s.m, s.n, s.ldc);
        DYAD_CUDA_CHECK_LAUNCH();
    }
    GemmShape one = s;
    one.batch = 1, one.ldc = s.n, one.stride_c = 0;
    for (int64_t p = 0; p < s.batch; p++)
        cublas_bf16_batches(one, 1, alpha, a + p * s.stride_a, b + p * s.stride_b, beta, cf);
    narrow_kernel<<<grid_for(s.m * s.n), kBlock, 0, stream()>>>(c, cf, s.m, s.n, s.ldc);
    DYAD_CUDA_CHECK_LAUNCH();
}

}  // namespace

void gemm_tiled(const GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c) {
    if (s.batch <= 0 || s.m <= 0 || s.n <= 0) return;
    if (s.stride_c == 0 && s.batch > 1) {
        // Batches accumulate into one C: one launch per batch, in order on the stream.
        GemmShape one = s;
        one.batch = 1;
        for (int64_t p = 0; p < s.batch; p++)
            launch_tiled(one, 1, alpha, a + p * s.stride_a, b + p * s.stride_b, beta, c);
        return;
    }
    launch_tiled(s, s.batch, alpha, a, b, beta, c);
}

void gemm_cublas(const GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c) {
    if (s.batch <= 0 || s.m <= 0 || s.n <= 0) return;
    // k == 0 (C = beta * C, or zeros) and shapes outside cuBLAS's int / leading-dimension rules run on the
    // tiled kernel, which handles every shape.
    if (!cublas_accepts(s)) {
        gemm_tiled(s, alpha, a, b, beta, c);
        return;
    }
    if (s.stride_c == 0 && s.batch > 1) {
        for (int64_t p = 0; p < s.batch; p++)
            cublas_batches(s, 1, alpha, a + p * s.stride_a, b + p * s.stride_b, beta, c);
        return;
    }
    cublas_batches(s, s.batch, alpha, a, b, beta, c);
}

void gemm(const GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c) {
    if (gemm_kernel() == GemmKernel::tiled)
        gemm_tiled(s, alpha, a, b, beta, c);
    else
        gemm_cublas(s, alpha, a, b, beta, c);
}

void gemm(const GemmShape& s, float alpha, const bfloat16* a, const bfloat16* b, float beta, bfloat16* c) {
    if (s.batch <= 0 || s.m <= 0 || s.n <= 0) return;
    const bool shared_c = s.stride_c == 0 && s.batch > 1;
    if (!cublas_accepts(s)) {
        const int64_t elems = (shared_c ? 1 : s.batch) * s.m * s.n;
        gemm_bf16_plain_kernel<<<grid_for(elems), kBlock, 0, stream()>>>(s, shared_c, alpha, a, b, beta, c);
        DYAD_CUDA_CHECK_LAUNCH();
        return;
    }
    if (shared_c)
        cublas_bf16_shared_c(s, alpha, a, b, beta, c);
    else
        cublas_bf16_batches(s, s.batch, alpha, a, b, beta, c);
}

}  // namespace dyad::cuda
