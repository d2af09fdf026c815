// 2-D convolution on the GPU: cuDNN (legacy v9 API) by default, im2col + GEMM as the alternative and
// the fallback. Host code; the custom kernels it uses live in im2col.cu.
//
// cuDNN: the tensor, filter, convolution and activation descriptors of a shape are built once and cached
// with, for each pass (forward, backward data, backward filter), the algorithms found for it. The key is
// the shape (its layout included), the math setting, the deterministic flag and the device. Algorithms are
// searched on a pass's first call with cudnnFind*AlgorithmEx, which times the candidates on the real
// inputs and writes into scratch outputs in the workspace (the caller's outputs are left alone). The
// acceptable ones are kept fastest first (conv_algo.h: in deterministic mode only deterministic ones,
// never FP16 down-conversion, in strict FP32 never tensor cores), each with the math type Find ran it
// with, which is set on the pass's own convolution descriptor before it runs. At each call the first
// algorithm cuDNN accepts runs; one it refuses (other pointers than Find saw, no memory for its workspace)
// gives way to the next, and im2col runs when none is left, for all four calls (forward, the fused bias +
// ReLU forward, both backward passes). A shape cuDNN cannot describe runs im2col too. Bias gradients
// always use dyad's own deterministic reduction kernel; the forward bias is added by a kernel after the
// convolution, except in conv2d_bias_relu_fwd, which runs cudnnConvolutionBiasActivationForward where
// cuDNN supports it.
//
// im2col: images are lowered in chunks sized to a workspace budget (a 1x1, stride-1, unpadded
// convolution needs no lowering: an image is its own column matrix), and each chunk is one batched
// gemm() call (cuBLAS or the tiled kernel, whichever is selected):
//   forward          y[i] (K x PQ)     = W (K x CRS) * col[i] (CRS x PQ), then + bias
//   backward data    dcol[i] (CRS x PQ) = W^T * dy[i], then col2im adds dcol[i] into dx[i]
//   backward filter  dW[i] (K x CRS)  = dy[i] * col[i]^T into partial buffers, then dW += their sum,
//                                       added in image order
// With channels_last (NHWC x and y, KRSC weight) an image's column matrix is (PQ x RSC) (im2col.cu) and
// an image's y or dy is (PQ x K) as stored, so the products are transposed:
//   forward          y[i] (PQ x K)     = col[i] (PQ x RSC) * W^T, W stored (K x RSC); the images of a
//                                        chunk lie one after another in col and in y, so the chunk is
//                                        one GEMM of (chunk * PQ) rows
//   backward data    dcol[i] (PQ x RSC) = dy[i] (PQ x K) * W, likewise one GEMM per chunk, then col2im
//   backward filter  dW[i] (K x RSC)  = dy[i]^T * col[i] into partial buffers, added in image order
// and the bias (gradient) runs along the last dimension. For the 1x1, stride-1, unpadded convolution
// the NHWC x is its own (N*HW x C) column matrix and dy (N*HW x K) needs no col2im.
//
// The cuDNN plan of a channels_last shape describes x, y (and so dx, dy) as CUDNN_TENSOR_NHWC tensors
// and the weight as a CUDNN_TENSOR_NHWC (KRSC) filter; the bias stays a (1, K, 1, 1) tensor, in the
// same format as y. The layout is part of the plan's key.
//
// bfloat16 operands (x, weight, bias, y and their gradients) take plans of their own (the data type is
// part of the key): CUDNN_DATA_BFLOAT16 tensor and filter descriptors with a CUDNN_DATA_FLOAT compute type
// (float accumulation, each output rounded once; alpha and beta are floats), searched and filtered as
// conv_algo::tensor_math says (tensor cores allowed whatever math() is; deterministic mode as for float),
// whatever conv_kernel() says. The bias enters through cuDNN's blend (y holds it, beta = 1), so conv + bias
// is rounded once; the ReLU of conv2d_bias_relu_fwd is dyad's kernel on the result; the bias gradient is dyad's
// deterministic reduction, summed in float and added into the bfloat16 dbias with one rounding. A pass
// cuDNN cannot describe, or offers or accepts no bfloat16 algorithm for, runs the float path on widened
// copies of its operands (device scratch, freed stream-ordered) and rounds the results once: slower, and
// the same contract.
#include <array>
#include <atomic>
#include <climits>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../conv.h"
#include "../elementwise.h"
#include "../gemm.h"
#include "context.h"
#include "conv_algo.h"
#include "dyad/bfloat16.h"

namespace dyad::cuda {

// Defined in im2col.cu.
namespace lowering {
void im2col_images(const Conv2dShape& s, int64_t images, float* col, const float* x);
void col2im_images(const Conv2dShape& s, int64_t images, float* dx, const float* col);
void add_bias(float* y, const float* bias, int64_t n, int64_t k, int64_t pq, bool channels_last, bool relu);
void bias_grad(float* dbias, const float* dy, int64_t n, int64_t k, int64_t pq, bool channels_last);
void add_partials(float* out, const float* parts, int64_t count, int64_t nparts);
void add_bias(bfloat16* y, const bfloat16* bias, int64_t n, int64_t k, int64_t pq, bool channels_last, bool relu);
void bias_grad(bfloat16* dbias, const bfloat16* dy, int64_t n, int64_t k, int64_t pq, bool channels_last);
}  // namespace lowering

namespace {

// Algorithm workspace offered to cudnnFind*AlgorithmEx (candidates needing more are skipped); allocated
// for the search only.
constexpr size_t kFindWorkspace = size_t(128) << 20;
// Column-matrix bytes per im2col chunk.
constexpr size_t kColumnBudget = size_t(64) << 20;

size_t align_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

// Statuses that mean "cuDNN cannot run this shape or configuration" (rather than a failure).
bool unusable(cudnnStatus_t st) {
    const int cat = CUDNN_STATUS_CATEGORY(static_cast<int>(st));
    return cat == CUDNN_STATUS_NOT_SUPPORTED || cat == CUDNN_STATUS_BAD_PARAM;
}

// ---------------------------------------------------------------- im2col + GEMM
bool direct(const Conv2dShape& s) {
    return s.r == 1 && s.s == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 0 && s.pad_w == 0;
}

// Images per chunk so that their column matrices fit kColumnBudget (at least one).
int64_t chunk_images(const Conv2dShape& s) {
    const int64_t per_image = s.c * s.r * s.s * s.p * s.q * int64_t(sizeof(float));
    return std::max<int64_t>(1, std::min<int64_t>(s.n, int64_t(kColumnBudget) / std::max<int64_t>(per_image, 1)));
}

// ---- NHWC (channels_last)
void im2col_fwd_nhwc(const Conv2dShape& s, float* y, const float* x, const float* weight, const float* bias,
                     bool relu) {
    const int64_t rsc = s.c * s.r * s.s, pq = s.p * s.q, hwc = s.h * s.w * s.c;
    GemmShape g;
    g.n = s.k, g.k = rsc;
    g.lda = rsc;                    // col rows
    g.trans_b = true, g.ldb = rsc;  // W^T: the weight is stored (K, RSC)
    g.ldc = s.k;
    if (direct(s)) {
        g.m = s.n * pq;  // x (N*HW, C) is the column matrix of every image at once
        gemm(g, 1.0f, x, weight, 0.0f, y);
    } else {
        const int64_t chunk = chunk_images(s), per_image = pq * rsc;
        float* col = static_cast<float*>(workspace(size_t(chunk * per_image) * sizeof(float)));
        for (int64_t i0 = 0; i0 < s.n; i0 += chunk) {
            const int64_t nb = std::min(chunk, s.n - i0);
            lowering::im2col_images(s, nb, col, x + i0 * hwc);
            g.m = nb * pq;
            gemm(g, 1.0f, col, weight, 0.0f, y + i0 * pq * s.k);
        }
    }
    lowering::add_bias(y, bias, s.n, s.k, pq, true, relu);
}

void im2col_bwd_data_nhwc(const Conv2dShape& s, float* dx, const float* dy, const float* weight) {
    const int64_t rsc = s.c * s.r * s.s, pq = s.p * s.q, hwc = s.h * s.w * s.c;
    GemmShape g;
    g.n = rsc, g.k = s.k;
    g.lda = s.k;  // dy rows (PQ of each image, K)
    g.ldb = rsc;  // W (K, RSC) as stored
    g.ldc = rsc;
    if (direct(s)) {
        g.m = s.n * pq;
        gemm(g, 1.0f, dy, weight, 1.0f, dx);  // dx (N*HW, C) directly, accumulating
        return;
    }
    const int64_t chunk = chunk_images(s), per_image = pq * rsc;
    float* dcol = static_cast<float*>(workspace(size_t(chunk * per_image) * sizeof(float)));
    for (int64_t i0 = 0; i0 < s.n; i0 += chunk) {
        const int64_t nb = std::min(chunk, s.n - i0);
        g.m = nb * pq;
        gemm(g, 1.0f, dy + i0 * pq * s.k, weight, 0.0f, dcol);
        lowering::col2im_images(s, nb, dx + i0 * hwc, dcol);
    }
}

// ---- NCHW
void im2col_fwd(const Conv2dShape& s, float* y, const float* x, const float* weight, const float* bias, bool relu) {
    if (s.channels_last) return im2col_fwd_nhwc(s, y, x, weight, bias, relu);
    const int64_t crs = s.c * s.r * s.s, pq = s.p * s.q, chw = s.c * s.h * s.w, kpq = s.k * pq;
    GemmShape g;
    g.m = s.k, g.n = pq, g.k = crs;
    g.lda = crs, g.stride_a = 0;  // the weight, shared by every image
    g.ldb = pq;
    g.ldc = pq, g.stride_c = kpq;
    if (direct(s)) {
        g.batch = s.n, g.stride_b = chw;
        gemm(g, 1.0f, weight, x, 0.0f, y);
    } else {
        const int64_t chunk = chunk_images(s), per_image = crs * pq;
        float* col = static_cast<float*>(workspace(size_t(chunk * per_image) * sizeof(float)));
        for (int64_t i0 = 0; i0 < s.n; i0 += chunk) {
            const int64_t nb = std::min(chunk, s.n - i0);
            lowering::im2col_images(s, nb, col, x + i0 * chw);
            g.batch = nb, g.stride_b = per_image;
            gemm(g, 1.0f, weight, col, 0.0f, y + i0 * kpq);
        }
    }
    lowering::add_bias(y, bias, s.n, s.k, pq, false, relu);
}

void im2col_bwd_data(const Conv2dShape& s, float* dx, const float* dy, const float* weight) {
    if (s.channels_last) return im2col_bwd_data_nhwc(s, dx, dy, weight);
    const int64_t crs = s.c * s.r * s.s, pq = s.p * s.q, chw = s.c * s.h * s.w, kpq = s.k * pq;
    GemmShape g;
    g.m = crs, g.n = pq, g.k = s.k;
    g.trans_a = true, g.lda = crs, g.stride_a = 0;  // W^T: the weight is stored (K, CRS)
    g.ldb = pq, g.stride_b = kpq;
    g.ldc = pq;
    if (direct(s)) {
        g.batch = s.n, g.stride_c = chw;
        gemm(g, 1.0f, weight, dy, 1.0f, dx);  // straight into dx, accumulating
        return;
    }
    const int64_t chunk = chunk_images(s), per_image = crs * pq;
    float* dcol = static_cast<float*>(workspace(size_t(chunk * per_image) * sizeof(float)));
    for (int64_t i0 = 0; i0 < s.n; i0 += chunk) {
        const int64_t nb = std::min(chunk, s.n - i0);
        g.batch = nb, g.stride_c = per_image;
        gemm(g, 1.0f, weight, dy + i0 * kpq, 0.0f, dcol);
        lowering::col2im_images(s, nb, dx + i0 * chw, dcol);
    }
}

// dW += the sum over images of dy[i] * col[i]^T. One batched GEMM per chunk writes each image's product
// into its own slot of a partial-sum buffer (so the GEMM has a whole chunk of independent products to
// spread over the GPU, however small dW is), then the partials are added into dW in image order.
void im2col_bwd_filter(const Conv2dShape& s, float* dweight, const float* dy, const float* x) {
    const int64_t crs = s.c * s.r * s.s, pq = s.p * s.q, chw = s.c * s.h * s.w, kpq = s.k * pq, kcrs = s.k * crs;
    const bool dir = direct(s);
    const int64_t col_floats = dir ? 0 : crs * pq;  // per image
    const int64_t per_image = (col_floats + kcrs) * int64_t(sizeof(float));
    const int64_t chunk =
        std::max<int64_t>(1, std::min<int64_t>(s.n, int64_t(kColumnBudget) / std::max<int64_t>(per_image, 1)));
    // Partials start 256 bytes aligned, after the chunk's column matrices.
    const int64_t parts_at = int64_t(align_up(size_t(chunk * col_floats), 64));
    float* ws = static_cast<float*>(workspace(size_t(parts_at + chunk * kcrs) * sizeof(float)));
    float* col = ws;
    float* parts = ws + parts_at;
    GemmShape g;
    g.m = s.k, g.n = crs, g.k = pq;
    g.stride_a = kpq, g.ldc = crs, g.stride_c = kcrs;
    if (s.channels_last) {
        g.trans_a = true, g.lda = s.k;  // dy[i]^T: dy[i] is stored (PQ, K)
        g.ldb = crs;                    // col[i] (PQ, RSC) as stored
    } else {
        g.lda = pq;                    // dy[i] (K, PQ)
        g.trans_b = true, g.ldb = pq;  // col[i]^T: col is stored (CRS, PQ)
    }
    for (int64_t i0 = 0; i0 < s.n; i0 += chunk) {
        const int64_t nb = std::min(chunk, s.n - i0);
        const float* b = x + i0 * chw;  // 1x1, stride 1, no padding: the images are their own columns
        if (!dir) {
            lowering::im2col_images(s, nb, col, x + i0 * chw);
            b = col;
        }
        g.batch = nb, g.stride_b = dir ? chw : col_floats;
        gemm(g, 1.0f, dy + i0 * kpq, b, 0.0f, parts);
        lowering::add_partials(dweight, parts, kcrs, nb);
    }
}

// ---------------------------------------------------------------- cuDNN plans
enum Pass { kFwd = 0, kBwdData = 1, kBwdFilter = 2 };

using conv_algo::Candidate;

struct Choice {
    bool searched = false;
    std::vector<Candidate> ranked;  // acceptable algorithms, fastest first; empty: the pass runs im2col
};

// Descriptors are never destroyed: plans live until the process ends, and destroying them from a static
// destructor could run after cuDNN itself is gone. Each pass has a convolution descriptor of its own, so
// the math type set for one pass's algorithm is never the one another pass runs with.
struct Plan {
    cudnnDataType_t type = CUDNN_DATA_FLOAT;  // of x, weight, bias, y: CUDNN_DATA_FLOAT or CUDNN_DATA_BFLOAT16
    Math math = Math::fp32;                   // the setting its algorithms are chosen under (tensor_math)
    bool usable = false;                      // the descriptors were accepted
    cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
    cudnnFilterDescriptor_t w = nullptr;
    cudnnConvolutionDescriptor_t conv[3] = {nullptr, nullptr, nullptr};
    cudnnActivationDescriptor_t relu = nullptr;
    Choice pass[3];
    std::mutex run_mu;              // setting a pass's math type and the call that runs with it go together
    std::atomic<bool> fused{true};  // false once no algorithm ran the fused bias + ReLU call
};

using Key = std::array<int64_t, 18>;

struct Registry {
    std::mutex mu;
    std::map<Key, std::unique_ptr<Plan>> plans;
};

Registry& registry() {
    static Registry* r = new Registry;  // never destroyed (see Plan)
    return *r;
}

std::atomic<size_t> g_fallbacks{0};
std::atomic<int> g_fail_next{0};

bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

size_t element_size(cudnnDataType_t type) { return type == CUDNN_DATA_BFLOAT16 ? sizeof(bfloat16) : sizeof(float); }

// Builds the descriptors for p.type and p.math; false when cuDNN rejects the shape.
bool build(Plan& p, const Conv2dShape& s) {
    if (!fits_int(s.n * s.c * s.h * s.w) || !fits_int(s.n * s.k * s.p * s.q) || !fits_int(s.k * s.c * s.r * s.s) ||
        !fits_int(s.pad_h) || !fits_int(s.pad_w) || !fits_int(s.stride_h) || !fits_int(s.stride_w))
        return false;
    DYAD_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.x));
    DYAD_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.y));
    DYAD_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.bias));
    DYAD_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p.w));
    for (cudnnConvolutionDescriptor_t& d : p.conv) DYAD_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d));
    DYAD_CUDNN_CHECK(cudnnCreateActivationDescriptor(&p.relu));
    // The dimensions are given in (n, c, h, w) order whatever the layout; the format says how they lie in
    // memory: NHWC for channels_last tensors, and for the filter NHWC means (k, r, s, c). The bias is a
    // (1, K, 1, 1) tensor in y's format (its K values are contiguous either way).
    const cudnnTensorFormat_t fmt = s.channels_last ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    // The operands are p.type; the convolution computes in float either way.
    std::vector<cudnnStatus_t> steps = {
        cudnnSetTensor4dDescriptor(p.x, fmt, p.type, int(s.n), int(s.c), int(s.h), int(s.w)),
        cudnnSetTensor4dDescriptor(p.y, fmt, p.type, int(s.n), int(s.k), int(s.p), int(s.q)),
        cudnnSetTensor4dDescriptor(p.bias, fmt, p.type, 1, int(s.k), 1, 1),
        cudnnSetFilter4dDescriptor(p.w, p.type, fmt, int(s.k), int(s.c), int(s.r), int(s.s)),
        cudnnSetActivationDescriptor(p.relu, CUDNN_ACTIVATION_RELU, CUDNN_PROPAGATE_NAN, 0.0),
    };
    for (cudnnConvolutionDescriptor_t d : p.conv) {
        steps.push_back(cudnnSetConvolution2dDescriptor(d, int(s.pad_h), int(s.pad_w), int(s.stride_h), int(s.stride_w),
                                                        1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
        steps.push_back(cudnnSetConvolutionMathType(d, conv_algo::search_math(p.math)));
    }
    for (cudnnStatus_t st : steps) {
        if (unusable(st)) return false;
        DYAD_CUDNN_CHECK(st);
    }
    // cuDNN's output size must be ours (it is, by the same formula); anything else is unusable.
    int on = 0, oc = 0, oh = 0, ow = 0;
    const cudnnStatus_t st = cudnnGetConvolution2dForwardOutputDim(p.conv[kFwd], p.x, p.w, &on, &oc, &oh, &ow);
    if (unusable(st)) return false;
    DYAD_CUDNN_CHECK(st);
    return on == s.n && oc == s.k && oh == s.p && ow == s.q;
}

// The plan of s for operands of `type` under the current settings on the current device (built on first use).
Plan* plan_for(const Conv2dShape& s, cudnnDataType_t type) {
    const Math m = conv_algo::tensor_math(math(), type == CUDNN_DATA_BFLOAT16);
    const Key key = {s.n,
                     s.c,
                     s.h,
                     s.w,
                     s.k,
                     s.r,
                     s.s,
                     s.p,
                     s.q,
                     s.stride_h,
                     s.stride_w,
                     s.pad_h,
                     s.pad_w,
                     int64_t(s.channels_last),  // an NCHW and an NHWC convolution have different descriptors
                     int64_t(type),
                     int64_t(m),
                     int64_t(deterministic()),
                     int64_t(current_device())};
    Registry& reg = registry();
    std::lock_guard<std::mutex> lock(reg.mu);
    std::unique_ptr<Plan>& slot = reg.plans[key];
    if (!slot) {
        auto p = std::make_unique<Plan>();
        p->type = type;
        p->math = m;
        p->usable = build(*p, s);
        slot = std::move(p);
    }
    return slot.get();
}

// The ranked algorithms of `pass` for plan p, searched on the first call. in0 / in1: the pass's inputs
// (forward: x, w; backward data: w, dy; backward filter: x, dy).
const Choice& choose(Plan& p, Pass pass, const Conv2dShape& s, const void* in0, const void* in1) {
    Registry& reg = registry();
    std::lock_guard<std::mutex> lock(reg.mu);
    Choice& c = p.pass[pass];
    if (c.searched) return c;
    // Capture hazard: the search runs and times the candidates and allocates its scratch memory; inside a
    // captured step nothing runs (the timings would be meaningless) and the scratch would be graph memory.
    // The eager warm-up calls of a step run the search; a capture only reuses its choice.
    if (capturing(current_device()))
        throw Error(::dyad::detail::str("conv.cpp:", __LINE__, ": conv2d: cuDNN's algorithm search for a new shape ",
                                        "cannot run inside a captured step; run the step eagerly with these shapes ",
                                        "first (CaptureOptions::warmup)"));
    const int64_t out_elems = pass == kFwd       ? s.n * s.k * s.p * s.q
                              : pass == kBwdData ? s.n * s.c * s.h * s.w
                                                 : s.k * s.c * s.r * s.s;
    const size_t scratch = align_up(size_t(out_elems) * element_size(p.type), 256);
    // A temporary block, not the shared workspace: the search's scratch output and its generous algorithm
    // space are needed once, and keeping them in the workspace would hold that memory for good. The free
    // is stream-ordered (after the search's kernels); the pool keeps the block for reuse.
    const int dev = current_device();
    struct Scratch {
        void* p;
        size_t bytes;
        int dev;
        ~Scratch() { free_device(p, bytes, dev); }
    } tmp{malloc_device(scratch + kFindWorkspace, dev), scratch + kFindWorkspace, dev};
    char* ws = static_cast<char*>(tmp.p);
    void* out = ws;
    void* algo_ws = ws + scratch;
    cudnnHandle_t h = cudnn();
    cudnnConvolutionDescriptor_t conv = p.conv[pass];
    int got = 0;
    cudnnStatus_t st;
    if (pass == kFwd) {
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        st = cudnnFindConvolutionForwardAlgorithmEx(h, p.x, in0, p.w, in1, conv, p.y, out,
                                                    CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf, algo_ws,
                                                    kFindWorkspace);
        if (st == CUDNN_STATUS_SUCCESS) c.ranked = conv_algo::rank_candidates(perf, got, p.math, deterministic());
    } else if (pass == kBwdData) {
        cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        st = cudnnFindConvolutionBackwardDataAlgorithmEx(h, p.w, in0, p.y, in1, conv, p.x, out,
                                                         CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, perf, algo_ws,
                                                         kFindWorkspace);
        if (st == CUDNN_STATUS_SUCCESS) c.ranked = conv_algo::rank_candidates(perf, got, p.math, deterministic());
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        st = cudnnFindConvolutionBackwardFilterAlgorithmEx(h, p.x, in0, p.y, in1, conv, p.w, out,
                                                           CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got, perf, algo_ws,
                                                           kFindWorkspace);
        if (st == CUDNN_STATUS_SUCCESS) c.ranked = conv_algo::rank_candidates(perf, got, p.math, deterministic());
    }
    if (st != CUDNN_STATUS_SUCCESS && !unusable(st)) DYAD_CUDNN_CHECK(st);
    c.searched = true;
    return c;
}

// The plan whose `pass` has cuDNN algorithms to try, or null when the pass must run im2col.
Plan* cudnn_plan(const Conv2dShape& s, Pass pass, const void* in0, const void* in1) {
    if (conv_kernel() != ConvKernel::cudnn) return nullptr;
    Plan* p = plan_for(s, CUDNN_DATA_FLOAT);
    if (!p->usable) return nullptr;
    return choose(*p, pass, s, in0, in1).ranked.empty() ? nullptr : p;
}

const char* pass_name(Pass pass) {
    return pass == kFwd ? "forward" : pass == kBwdData ? "backward data" : "backward filter";
}

// Runs call(conv descriptor, algorithm, workspace) -> cudnnStatus_t with the pass's algorithms, fastest
// first, until cuDNN accepts one; true when one ran. An algorithm whose workspace cannot be allocated, or
// that cuDNN refuses for these arguments (conv_algo::try_next), gives way to the next; false when none is
// left (the caller runs im2col). Any other failure throws, naming the call and the algorithm.
template <typename Call>
bool run_ranked(Plan& p, Pass pass, const char* what, Call&& call) {
    for (const Candidate& cand : p.pass[pass].ranked) {
        void* ws = nullptr;
        if (cand.memory) {
            try {
                ws = workspace(cand.memory);
            } catch (const OutOfMemoryError&) {
                g_fallbacks.fetch_add(1);
                continue;
            }
        }
        cudnnStatus_t st;
        {
            std::lock_guard<std::mutex> lock(p.run_mu);
            DYAD_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv[pass], cand.math));
            int injected = g_fail_next.load();
            while (injected > 0 && !g_fail_next.compare_exchange_weak(injected, injected - 1)) {
            }
            st = injected > 0 ? CUDNN_STATUS_NOT_SUPPORTED : call(p.conv[pass], cand, ws);
        }
        if (st == CUDNN_STATUS_SUCCESS) return true;
        if (!conv_algo::try_next(st))
            ::dyad::cuda::detail::throw_gpu(
                "cuDNN",
                ::dyad::detail::str(what, " (conv2d ", pass_name(pass), ", algorithm ", cand.algo, ")").c_str(),
                __FILE__, __LINE__, static_cast<int>(st), cudnnGetErrorString(st));
        g_fallbacks.fetch_add(1);
    }
    return false;
}

// Whether the convolution has work; with no input channels the output is the bias alone (zero without
// one), as in the naive kernel, and the filter gradient is empty while the bias gradient is not.
bool no_output(const Conv2dShape& s) { return s.n <= 0 || s.k <= 0 || s.p <= 0 || s.q <= 0; }
bool no_channels(const Conv2dShape& s) { return s.c <= 0 || s.r <= 0 || s.s <= 0; }

void bias_only_fwd(const Conv2dShape& s, float* y, const float* bias, bool relu) {
    DYAD_CUDA_CHECK(cudaMemsetAsync(y, 0, size_t(s.n * s.k * s.p * s.q) * sizeof(float), stream()));
    lowering::add_bias(y, bias, s.n, s.k, s.p * s.q, s.channels_last, relu);
}

}  // namespace

namespace conv_algo {
size_t fallbacks() { return g_fallbacks.load(); }
void fail_next(int n) { g_fail_next.store(n < 0 ? 0 : n); }
}  // namespace conv_algo

namespace {
// y = conv(x, weight), then the bias (and ReLU) added by a kernel: cuDNN's algorithms in order, else im2col.
void conv_then_bias(Plan* p, const Conv2dShape& s, float* y, const float* x, const float* weight, const float* bias,
                    bool relu) {
    const float one = 1.0f, zero = 0.0f;
    if (p && run_ranked(*p, kFwd, "cudnnConvolutionForward",
                        [&](cudnnConvolutionDescriptor_t conv, const Candidate& c, void* ws) {
                            return cudnnConvolutionForward(cudnn(), &one, p->x, x, p->w, weight, conv,
                                                           static_cast<cudnnConvolutionFwdAlgo_t>(c.algo), ws, c.memory,
                                                           &zero, p->y, y);
                        })) {
        lowering::add_bias(y, bias, s.n, s.k, s.p * s.q, s.channels_last, relu);
        return;
    }
    im2col_fwd(s, y, x, weight, bias, relu);
}
}  // namespace

void conv2d_fwd(const Conv2dShape& s, float* y, const float* x, const float* weight, const float* bias) {
    if (no_output(s)) return;
    if (no_channels(s)) return bias_only_fwd(s, y, bias, false);
    conv_then_bias(cudnn_plan(s, kFwd, x, weight), s, y, x, weight, bias, false);
}

void conv2d_bias_relu_fwd(const Conv2dShape& s, float* y, const float* x, const float* weight, const float* bias) {
    if (no_output(s)) return;
    if (no_channels(s)) return bias_only_fwd(s, y, bias, true);
    Plan* p = cudnn_plan(s, kFwd, x, weight);
    if (p && bias && p->fused.load()) {
        // y = relu(conv(x) + 0 * z + bias) with z = y: zeroed first, so whatever y held cannot leak in.
        const float one = 1.0f, zero = 0.0f;
        DYAD_CUDA_CHECK(cudaMemsetAsync(y, 0, size_t(s.n * s.k * s.p * s.q) * sizeof(float), stream()));
        if (run_ranked(*p, kFwd, "cudnnConvolutionBiasActivationForward",
                       [&](cudnnConvolutionDescriptor_t conv, const Candidate& c, void* ws) {
                           return cudnnConvolutionBiasActivationForward(cudnn(), &one, p->x, x, p->w, weight, conv,
                                                                        static_cast<cudnnConvolutionFwdAlgo_t>(c.algo),
                                                                        ws, c.memory, &zero, p->y, y, p->bias, bias,
                                                                        p->relu, p->y, y);
                       }))
            return;
        p->fused.store(false);  // from now on: the convolution, then the bias + ReLU kernel
    }
    conv_then_bias(p, s, y, x, weight, bias, true);
}

void conv2d_bwd_data(const Conv2dShape& s, float* dx, const float* dy, const float* weight) {
    if (no_output(s) || no_channels(s)) return;  // no output: dx += 0; no channels: dx is empty
    Plan* p = cudnn_plan(s, kBwdData, weight, dy);
    const float one = 1.0f;  // beta 1: dx accumulates
    if (p && run_ranked(*p, kBwdData, "cudnnConvolutionBackwardData",
                        [&](cudnnConvolutionDescriptor_t conv, const Candidate& c, void* ws) {
                            return cudnnConvolutionBackwardData(cudnn(), &one, p->w, weight, p->y, dy, conv,
                                                                static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algo), ws,
                                                                c.memory, &one, p->x, dx);
                        }))
        return;
    im2col_bwd_data(s, dx, dy, weight);
}

void conv2d_bwd_filter(const Conv2dShape& s, float* dweight, float* dbias, const float* dy, const float* x) {
    if (no_output(s)) return;
    if (!no_channels(s)) {
        Plan* p = cudnn_plan(s, kBwdFilter, x, dy);
        const float one = 1.0f;  // beta 1: dweight accumulates
        const bool ran = p && run_ranked(*p, kBwdFilter, "cudnnConvolutionBackwardFilter",
                                         [&](cudnnConvolutionDescriptor_t conv, const Candidate& c, void* ws) {
                                             return cudnnConvolutionBackwardFilter(
                                                 cudnn(), &one, p->x, x, p->y, dy, conv,
                                                 static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algo), ws, c.memory,
                                                 &one, p->w, dweight);
                                         });
        if (!ran) im2col_bwd_filter(s, dweight, dy, x);
    }
    if (dbias) lowering::bias_grad(dbias, dy, s.n, s.k, s.p * s.q, s.channels_last);
}

// ---------------------------------------------------------------- bfloat16
namespace {

// The bfloat16 plan of s when cuDNN has ranked algorithms for `pass` (searched on the first call; in0 / in1
// as for choose), whatever conv_kernel() says; null when it accepts no descriptors or offers no algorithm.
Plan* bf16_plan(const Conv2dShape& s, Pass pass, const void* in0, const void* in1) {
    Plan* p = plan_for(s, CUDNN_DATA_BFLOAT16);
    if (!p->usable) return nullptr;
    return choose(*p, pass, s, in0, in1).ranked.empty() ? nullptr : p;
}

// A float copy of n bfloat16 values in device memory (null and empty stay null), for the fallback below:
// widened on construction when asked, rounded into a bfloat16 array by store(). Freed stream-ordered.
class Widened {
public:
    Widened(const bfloat16* src, int64_t n, bool widen) : n_(src ? n : 0), dev_(current_device()) {
        if (n_ <= 0) return;
        p_ = static_cast<float*>(malloc_device(bytes(), dev_));
        if (widen) copy(p_, src, flat(n_));
    }
    ~Widened() {
        if (p_) free_device(p_, bytes(), dev_);
    }
    Widened(const Widened&) = delete;
    Widened& operator=(const Widened&) = delete;
    float* get() const { return p_; }
    void store(bfloat16* dst) const {
        if (p_) copy(dst, p_, flat(n_));
    }

private:
    size_t bytes() const { return size_t(n_) * sizeof(float); }
    static StridedShape flat(int64_t n) {
        StridedShape f;
        f.ndim = 1;
        f.size[0] = n;
        f.stride[0][0] = f.stride[1][0] = 1;
        return f;
    }
    float* p_ = nullptr;
    int64_t n_;
    int dev_;
};

int64_t x_numel(const Conv2dShape& s) { return s.n * s.c * s.h * s.w; }
int64_t w_numel(const Conv2dShape& s) { return s.k * s.c * s.r * s.s; }
int64_t y_numel(const Conv2dShape& s) { return s.n * s.k * s.p * s.q; }

void bias_only_fwd(const Conv2dShape& s, bfloat16* y, const bfloat16* bias, bool relu) {
    DYAD_CUDA_CHECK(cudaMemsetAsync(y, 0, size_t(y_numel(s)) * sizeof(bfloat16), stream()));  // +0.0
    lowering::add_bias(y, bias, s.n, s.k, s.p * s.q, s.channels_last, relu);
}

// y = conv(x, weight) + bias (then ReLU), conv + bias rounded once: y is filled with the bias and cuDNN
// blends its float result into it (beta = 1) before its one rounding; the ReLU of the rounded value is
// exact. The fill is made before every attempt, so an algorithm refused after writing leaves nothing
// behind. A shape cuDNN has no bfloat16 algorithm for runs the float path on widened copies.
void conv_then_bias(const Conv2dShape& s, bfloat16* y, const bfloat16* x, const bfloat16* weight, const bfloat16* bias,
                    bool relu) {
    if (Plan* p = bf16_plan(s, kFwd, x, weight)) {
        const float one = 1.0f, beta = bias ? 1.0f : 0.0f;
        const bool ran = run_ranked(*p, kFwd, "cudnnConvolutionForward",
                                    [&](cudnnConvolutionDescriptor_t conv, const Candidate& c, void* ws) {
                                        if (bias) bias_only_fwd(s, y, bias, false);
                                        return cudnnConvolutionForward(cudnn(), &one, p->x, x, p->w, weight, conv,
                                                                       static_cast<cudnnConvolutionFwdAlgo_t>(c.algo),
                                                                       ws, c.memory, &beta, p->y, y);
                                    });
        if (ran) return lowering::add_bias(y, nullptr, s.n, s.k, s.p * s.q, s.channels_last, relu);
    }
    const Widened xf(x, x_numel(s), true), wf(weight, w_numel(s), true), bf(bias, s.k, true), yf(y, y_numel(s), false);
    if (relu)
        conv2d_bias_relu_fwd(s, yf.get(), xf.get(), wf.get(), bf.get());
    else
        conv2d_fwd(s, yf.get(), xf.get(), wf.get(), bf.get());
    yf.store(y);
}

}  // namespace

void conv2d_fwd(const Conv2dShape& s, bfloat16* y, const bfloat16* x, const bfloat16* weight, const bfloat16* bias) {
    if (no_output(s)) return;
    if (no_channels(s)) return bias_only_fwd(s, y, bias, false);
    conv_then_bias(s, y, x, weight, bias, false);
}

void conv2d_bias_relu_fwd(const Conv2dShape& s, bfloat16* y, const bfloat16* x, const bfloat16* weight,
                          const bfloat16* bias) {
    if (no_output(s)) return;
    if (no_channels(s)) return bias_only_fwd(s, y, bias, true);
    conv_then_bias(s, y, x, weight, bias, true);
}

void conv2d_bwd_data(const Conv2dShape& s, bfloat16* dx, const bfloat16* dy, const bfloat16* weight) {
    if (no_output(s) || no_channels(s)) return;  // no output: dx += 0; no channels: dx is empty
    if (Plan* p = bf16_plan(s, kBwdData, weight, dy)) {
        const float one = 1.0f;  // beta 1: dx accumulates, as in the float path
        const bool ran =
            run_ranked(*p, kBwdData, "cudnnConvolutionBackwardData",
                       [&](cudnnConvolutionDescriptor_t conv, const Candidate& c, void* ws) {
                           return cudnnConvolutionBackwardData(cudnn(), &one, p->w, weight, p->y, dy, conv,
                                                               static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algo), ws,
                                                               c.memory, &one, p->x, dx);
                       });
        if (ran) return;
    }
    const Widened dyf(dy, y_numel(s), true), wf(weight, w_numel(s), true), dxf(dx, x_numel(s), true);
    conv2d_bwd_data(s, dxf.get(), dyf.get(), wf.get());
    dxf.store(dx);
}

void conv2d_bwd_filter(const Conv2dShape& s, bfloat16* dweight, bfloat16* dbias, const bfloat16* dy,
                       const bfloat16* x) {
    if (no_output(s)) return;
    if (!no_channels(s)) {
        bool ran = false;
        if (Plan* p = bf16_plan(s, kBwdFilter, x, dy)) {
            const float one = 1.0f;  // beta 1: dweight accumulates, as in the float path
            ran = run_ranked(*p, kBwdFilter, "cudnnConvolutionBackwardFilter",
                             [&](cudnnConvolutionDescriptor_t conv, const Candidate& c, void* ws) {
                                 return cudnnConvolutionBackwardFilter(
                                     cudnn(), &one, p->x, x, p->y, dy, conv,
                                     static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algo), ws, c.memory, &one, p->w,
                                     dweight);
                             });
        }
        if (!ran) {
            const Widened dyf(dy, y_numel(s), true), xf(x, x_numel(s), true), dwf(dweight, w_numel(s), true);
            conv2d_bwd_filter(s, dwf.get(), nullptr, dyf.get(), xf.get());
            dwf.store(dweight);
        }
    }
    if (dbias) lowering::bias_grad(dbias, dy, s.n, s.k, s.p * s.q, s.channels_last);
}

}  // namespace dyad::cuda
