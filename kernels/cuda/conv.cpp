// 2-D convolution on the GPU: cuDNN (legacy v9 API) by default, im2col + GEMM as the alternative and
// the fallback. Host code; the custom kernels it uses live in im2col.cu.
//
// cuDNN: the tensor, filter, convolution and activation descriptors of a shape are built once and cached
// with, for each pass (forward, backward data, backward filter), the algorithm chosen for it. The key is
// the shape, the math setting, the deterministic flag and the device. An algorithm is chosen on a pass's
// first call with cudnnFind*AlgorithmEx, which times the candidates on the real inputs and writes into
// scratch outputs in the workspace (the caller's outputs are left alone); the fastest with a success
// status is taken, in deterministic mode only among CUDNN_DETERMINISTIC ones, and in strict FP32 never a
// tensor-core one. The math type is set on the convolution descriptor: FMA (strict FP32), TENSOR_OP
// (TF32 allowed) or TENSOR_OP_ALLOW_CONVERSION (bf16). A shape or pass cuDNN cannot do (not supported,
// or no candidate passes the filter) runs im2col instead. Bias gradients always use dyad's own
// deterministic reduction kernel; the forward bias is added by a kernel after the convolution, except
// in conv2d_bias_relu_fwd, which runs cudnnConvolutionBiasActivationForward where cuDNN supports it.
//
// im2col: images are lowered in chunks sized to a workspace budget (a 1x1, stride-1, unpadded
// convolution needs no lowering: an image is its own column matrix), and each chunk is one batched
// gemm() call (cuBLAS or the tiled kernel, whichever is selected):
//   forward          y[i] (K x PQ)     = W (K x CRS) * col[i] (CRS x PQ), then + bias
//   backward data    dcol[i] (CRS x PQ) = W^T * dy[i], then col2im adds dcol[i] into dx[i]
//   backward filter  dW[i] (K x CRS)  = dy[i] * col[i]^T into partial buffers, then dW += their sum,
//                                       added in image order
#include <array>
#include <atomic>
#include <climits>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "../conv.h"
#include "../gemm.h"
#include "context.h"

namespace dyad::cuda {

// Defined in im2col.cu.
namespace lowering {
void im2col_images(const Conv2dShape& s, int64_t images, float* col, const float* x);
void col2im_images(const Conv2dShape& s, int64_t images, float* dx, const float* col);
void add_bias(float* y, const float* bias, int64_t n, int64_t k, int64_t pq, bool relu);
void bias_grad(float* dbias, const float* dy, int64_t n, int64_t k, int64_t pq);
void add_partials(float* out, const float* parts, int64_t count, int64_t nparts);
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

void im2col_fwd(const Conv2dShape& s, float* y, const float* x, const float* weight, const float* bias, bool relu) {
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
    lowering::add_bias(y, bias, s.n, s.k, pq, relu);
}

void im2col_bwd_data(const Conv2dShape& s, float* dx, const float* dy, const float* weight) {
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
    g.lda = pq, g.stride_a = kpq;  // dy[i] (K, PQ)
    g.trans_b = true, g.ldb = pq;  // col[i]^T: col is stored (CRS, PQ)
    g.ldc = crs, g.stride_c = kcrs;
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

struct Choice {
    bool searched = false;
    bool usable = false;  // an acceptable algorithm was found; otherwise the pass runs im2col
    int algo = 0;
    size_t memory = 0;  // its workspace bytes
};

// Descriptors are never destroyed: plans live until the process ends, and destroying them from a static
// destructor could run after cuDNN itself is gone.
struct Plan {
    bool usable = false;  // the descriptors were accepted
    cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
    cudnnFilterDescriptor_t w = nullptr;
    cudnnConvolutionDescriptor_t conv = nullptr;
    cudnnActivationDescriptor_t relu = nullptr;
    Choice pass[3];
    std::atomic<bool> fused{true};  // false once the fused bias + ReLU call reported "not supported"
};

using Key = std::array<int64_t, 16>;

struct Registry {
    std::mutex mu;
    std::map<Key, std::unique_ptr<Plan>> plans;
};

Registry& registry() {
    static Registry* r = new Registry;  // never destroyed (see Plan)
    return *r;
}

bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

// Builds the descriptors; false when cuDNN rejects the shape.
bool build(Plan& p, const Conv2dShape& s) {
    if (!fits_int(s.n * s.c * s.h * s.w) || !fits_int(s.n * s.k * s.p * s.q) || !fits_int(s.k * s.c * s.r * s.s) ||
        !fits_int(s.pad_h) || !fits_int(s.pad_w) || !fits_int(s.stride_h) || !fits_int(s.stride_w))
        return false;
    DYAD_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.x));
    DYAD_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.y));
    DYAD_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.bias));
    DYAD_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p.w));
    DYAD_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p.conv));
    DYAD_CUDNN_CHECK(cudnnCreateActivationDescriptor(&p.relu));
    const cudnnMathType_t mt = math() == Math::fp32   ? CUDNN_FMA_MATH
                               : math() == Math::tf32 ? CUDNN_TENSOR_OP_MATH
                                                      : CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
    const cudnnStatus_t steps[] = {
        cudnnSetTensor4dDescriptor(p.x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, int(s.n), int(s.c), int(s.h), int(s.w)),
        cudnnSetTensor4dDescriptor(p.y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, int(s.n), int(s.k), int(s.p), int(s.q)),
        cudnnSetTensor4dDescriptor(p.bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, int(s.k), 1, 1),
        cudnnSetFilter4dDescriptor(p.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, int(s.k), int(s.c), int(s.r), int(s.s)),
        cudnnSetConvolution2dDescriptor(p.conv, int(s.pad_h), int(s.pad_w), int(s.stride_h), int(s.stride_w), 1, 1,
                                        CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
        cudnnSetConvolutionMathType(p.conv, mt),
        cudnnSetActivationDescriptor(p.relu, CUDNN_ACTIVATION_RELU, CUDNN_PROPAGATE_NAN, 0.0),
    };
    for (cudnnStatus_t st : steps) {
        if (unusable(st)) return false;
        DYAD_CUDNN_CHECK(st);
    }
    // cuDNN's output size must be ours (it is, by the same formula); anything else is unusable.
    int on = 0, oc = 0, oh = 0, ow = 0;
    const cudnnStatus_t st = cudnnGetConvolution2dForwardOutputDim(p.conv, p.x, p.w, &on, &oc, &oh, &ow);
    if (unusable(st)) return false;
    DYAD_CUDNN_CHECK(st);
    return on == s.n && oc == s.k && oh == s.p && ow == s.q;
}

// The plan of s under the current settings on the current device (built on first use).
Plan* plan_for(const Conv2dShape& s) {
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
                     int64_t(math()),
                     int64_t(deterministic()),
                     int64_t(current_device())};
    Registry& reg = registry();
    std::lock_guard<std::mutex> lock(reg.mu);
    std::unique_ptr<Plan>& slot = reg.plans[key];
    if (!slot) {
        auto p = std::make_unique<Plan>();
        p->usable = build(*p, s);
        slot = std::move(p);
    }
    return slot.get();
}

// The first acceptable result (they come fastest first): success, deterministic when asked, no tensor
// cores in strict FP32.
template <typename Perf>
void pick(Choice& c, const Perf* perf, int count) {
    for (int i = 0; i < count; i++) {
        const Perf& r = perf[i];
        if (r.status != CUDNN_STATUS_SUCCESS) continue;
        if (deterministic() && r.determinism != CUDNN_DETERMINISTIC) continue;
        if (math() == Math::fp32 &&
            (r.mathType == CUDNN_TENSOR_OP_MATH || r.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION))
            continue;
        c.usable = true;
        c.algo = static_cast<int>(r.algo);
        c.memory = r.memory;
        return;
    }
}

// The algorithm of `pass` for plan p, searched on the first call. in0 / in1: the pass's inputs (forward:
// x, w; backward data: w, dy; backward filter: x, dy).
Choice choose(Plan& p, Pass pass, const Conv2dShape& s, const void* in0, const void* in1) {
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
    const size_t scratch = align_up(size_t(out_elems) * sizeof(float), 256);
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
    int got = 0;
    cudnnStatus_t st;
    if (pass == kFwd) {
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        st = cudnnFindConvolutionForwardAlgorithmEx(h, p.x, in0, p.w, in1, p.conv, p.y, out,
                                                    CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf, algo_ws,
                                                    kFindWorkspace);
        if (st == CUDNN_STATUS_SUCCESS) pick(c, perf, got);
    } else if (pass == kBwdData) {
        cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        st = cudnnFindConvolutionBackwardDataAlgorithmEx(h, p.w, in0, p.y, in1, p.conv, p.x, out,
                                                         CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, perf, algo_ws,
                                                         kFindWorkspace);
        if (st == CUDNN_STATUS_SUCCESS) pick(c, perf, got);
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        st = cudnnFindConvolutionBackwardFilterAlgorithmEx(h, p.x, in0, p.y, in1, p.conv, p.w, out,
                                                           CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got, perf, algo_ws,
                                                           kFindWorkspace);
        if (st == CUDNN_STATUS_SUCCESS) pick(c, perf, got);
    }
    if (st != CUDNN_STATUS_SUCCESS && !unusable(st)) DYAD_CUDNN_CHECK(st);
    c.searched = true;
    return c;
}

// The cuDNN algorithm for a pass, or a Choice with usable == false when the pass must run im2col.
Choice cudnn_choice(const Conv2dShape& s, Pass pass, const void* in0, const void* in1, Plan** plan) {
    *plan = nullptr;
    if (conv_kernel() != ConvKernel::cudnn) return {};
    Plan* p = plan_for(s);
    if (!p->usable) return {};
    *plan = p;
    return choose(*p, pass, s, in0, in1);
}

void* algo_workspace(const Choice& c) { return c.memory ? workspace(c.memory) : nullptr; }

bool empty(const Conv2dShape& s) { return s.n <= 0 || s.k <= 0 || s.c <= 0 || s.p <= 0 || s.q <= 0; }

}  // namespace

void conv2d_fwd(const Conv2dShape& s, float* y, const float* x, const float* weight, const float* bias) {
    if (empty(s)) return;
    Plan* p = nullptr;
    const Choice c = cudnn_choice(s, kFwd, x, weight, &p);
    if (!c.usable) {
        im2col_fwd(s, y, x, weight, bias, false);
        return;
    }
    const float one = 1.0f, zero = 0.0f;
    void* ws = algo_workspace(c);
    DYAD_CUDNN_CHECK(cudnnConvolutionForward(cudnn(), &one, p->x, x, p->w, weight, p->conv,
                                             static_cast<cudnnConvolutionFwdAlgo_t>(c.algo), ws, c.memory, &zero, p->y,
                                             y));
    lowering::add_bias(y, bias, s.n, s.k, s.p * s.q, false);
}

void conv2d_bias_relu_fwd(const Conv2dShape& s, float* y, const float* x, const float* weight, const float* bias) {
    if (empty(s)) return;
    Plan* p = nullptr;
    const Choice c = cudnn_choice(s, kFwd, x, weight, &p);
    if (!c.usable) {
        im2col_fwd(s, y, x, weight, bias, true);
        return;
    }
    const float one = 1.0f, zero = 0.0f;
    if (bias && p->fused.load()) {
        // y = relu(conv(x) + 0 * z + bias) with z = y: zeroed first, so whatever y held cannot leak in.
        DYAD_CUDA_CHECK(cudaMemsetAsync(y, 0, size_t(s.n * s.k * s.p * s.q) * sizeof(float), stream()));
        void* ws = algo_workspace(c);
        const cudnnStatus_t st = cudnnConvolutionBiasActivationForward(
            cudnn(), &one, p->x, x, p->w, weight, p->conv, static_cast<cudnnConvolutionFwdAlgo_t>(c.algo), ws, c.memory,
            &zero, p->y, y, p->bias, bias, p->relu, p->y, y);
        if (st == CUDNN_STATUS_SUCCESS) return;
        if (!unusable(st)) DYAD_CUDNN_CHECK(st);
        p->fused.store(false);  // from now on: the convolution, then the bias + ReLU kernel
    }
    void* ws = algo_workspace(c);
    DYAD_CUDNN_CHECK(cudnnConvolutionForward(cudnn(), &one, p->x, x, p->w, weight, p->conv,
                                             static_cast<cudnnConvolutionFwdAlgo_t>(c.algo), ws, c.memory, &zero, p->y,
                                             y));
    lowering::add_bias(y, bias, s.n, s.k, s.p * s.q, true);
}

void conv2d_bwd_data(const Conv2dShape& s, float* dx, const float* dy, const float* weight) {
    if (empty(s)) return;
    Plan* p = nullptr;
    const Choice c = cudnn_choice(s, kBwdData, weight, dy, &p);
    if (!c.usable) {
        im2col_bwd_data(s, dx, dy, weight);
        return;
    }
    const float one = 1.0f;  // beta 1: dx accumulates
    void* ws = algo_workspace(c);
    DYAD_CUDNN_CHECK(cudnnConvolutionBackwardData(cudnn(), &one, p->w, weight, p->y, dy, p->conv,
                                                  static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algo), ws, c.memory,
                                                  &one, p->x, dx));
}

void conv2d_bwd_filter(const Conv2dShape& s, float* dweight, float* dbias, const float* dy, const float* x) {
    if (empty(s)) return;
    Plan* p = nullptr;
    const Choice c = cudnn_choice(s, kBwdFilter, x, dy, &p);
    if (!c.usable) {
        im2col_bwd_filter(s, dweight, dy, x);
    } else {
        const float one = 1.0f;  // beta 1: dweight accumulates
        void* ws = algo_workspace(c);
        DYAD_CUDNN_CHECK(cudnnConvolutionBackwardFilter(cudnn(), &one, p->x, x, p->y, dy, p->conv,
                                                        static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algo), ws,
                                                        c.memory, &one, p->w, dweight));
    }
    if (dbias) lowering::bias_grad(dbias, dy, s.n, s.k, s.p * s.q);
}

}  // namespace dyad::cuda
