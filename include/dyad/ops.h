// Functional ops. Each op checks its arguments (dyad::Error naming the op and the shapes), runs the
// kernel of the tensor's device (CPU: naive or omp, see set_cpu_kernels; CUDA) and, when grad mode is on
// and an input requires grad, records its backward on the tape. Results are new contiguous tensors.
// Floating ops take float32 or float64 (float64 runs on the naive kernels); both operands of a binary
// op must share dtype and device.
#pragma once
#include <cstdint>
#include <vector>

#include "dyad/export.h"
#include "dyad/tensor.h"

DYAD_PUBLIC_BEGIN

namespace dyad {

// ---------------------------------------------------------------------------- elementwise
// Binary ops broadcast like NumPy: shapes are aligned from the right; each dim must be equal or 1.
// The gradient of a broadcast operand is summed over the broadcast dims.
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
// a ** b elementwise. Gradient w.r.t. b is a**b * log(a): defined for a > 0 only.
Tensor pow(const Tensor& a, const Tensor& b);

// Scalar variants: the scalar is converted to the tensor's dtype.
Tensor add(const Tensor& a, double s);
Tensor sub(const Tensor& a, double s);
Tensor sub(double s, const Tensor& a);
Tensor mul(const Tensor& a, double s);
Tensor div(const Tensor& a, double s);
Tensor div(double s, const Tensor& a);
Tensor pow(const Tensor& a, double exponent);

Tensor neg(const Tensor& a);
Tensor exp(const Tensor& a);
Tensor log(const Tensor& a);   // log of x <= 0 gives -inf/nan like std::log
Tensor sqrt(const Tensor& a);  // gradient 0.5 / sqrt(x): inf at 0
// min(max(a, lo), hi). Gradient passes where lo <= a <= hi (boundaries included), 0 outside.
Tensor clamp(const Tensor& a, double lo, double hi);
// |a|. Gradient sign(a): 1 for a > 0, -1 for a < 0, and 0 at 0 (either sign) and at NaN, as PyTorch.
Tensor abs(const Tensor& a);
// 1 / (1 + e^-a), computed as e^a / (1 + e^a) for a < 0 so that no e^|a| overflows: exact 0 and 1 only
// where float rounding gives them, never NaN for infinite a. Gradient y * (1 - y), from the output.
Tensor sigmoid(const Tensor& a);
// tanh(a) (the C library's, accurate for every a). Gradient 1 - y^2, from the output.
Tensor tanh(const Tensor& a);

// Comparisons: a uint8 mask (1 where the relation holds, 0 elsewhere) of the broadcast shape. Any dtypes:
// operands of different dtypes are compared in the wider one (float64 > float32 > int64 > int32 > uint8,
// PyTorch's promotion). IEEE rules: every comparison with a NaN is false except ne, which is true; -0 == +0.
// The scalar forms convert the scalar to a's dtype when a is floating or when the scalar is an integer in
// the range of a's integer dtype; otherwise (eq(int_tensor, 2.5), gt(uint8_tensor, 300)) both are compared
// in float64. Not differentiable (the result is an integer mask).
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, double s);
Tensor ne(const Tensor& a, double s);
Tensor lt(const Tensor& a, double s);
Tensor le(const Tensor& a, double s);
Tensor gt(const Tensor& a, double s);
Tensor ge(const Tensor& a, double s);

// a where cond is nonzero, b elsewhere, elementwise over the shape cond, a and b broadcast to. cond: uint8
// (a comparison's mask); a and b: one dtype (any) and cond's device. The scalar forms take the other
// operand's dtype. Differentiable in a and b (floating): dy flows to a where cond holds and to b elsewhere,
// summed over broadcast dims; exactly 0 flows to the side not taken, even when its value is inf or NaN.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor where(const Tensor& cond, const Tensor& a, double b);
Tensor where(const Tensor& cond, double a, const Tensor& b);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double s);
Tensor operator+(double s, const Tensor& a);
Tensor operator-(const Tensor& a, double s);
Tensor operator-(double s, const Tensor& a);
Tensor operator*(const Tensor& a, double s);
Tensor operator*(double s, const Tensor& a);
Tensor operator/(const Tensor& a, double s);
Tensor operator/(double s, const Tensor& a);
Tensor operator-(const Tensor& a);

// ---------------------------------------------------------------------------- activation
// relu(x) = max(x, 0). Gradient: 1 where x > 0, 0 where x <= 0 (0 at exactly 0, as in PyTorch).
// NaN inputs give NaN.
Tensor relu(const Tensor& x);

// ---------------------------------------------------------------------------- reduce
// Over all elements (result: a one-element tensor of shape ()) or over `dims` (negative dims count
// from the end; duplicates are an error; an empty list reduces nothing). keepdim keeps reduced dims with
// size 1. Reduced dims that are not adjacent are gathered by a permuted copy first.
Tensor sum(const Tensor& x);
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
// Maximum value. Backward sends the whole gradient to the first maximum (lowest index in row-major
// order of the reduced dims) when values tie. NaN wins over numbers (the first NaN is returned).
Tensor max(const Tensor& x);
Tensor max(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
// Minimum value, with max's rules mirrored: backward sends the whole gradient to the first minimum (lowest
// index in row-major order of the reduced dims) when values tie, -0 and +0 tying; NaN wins over numbers
// here too (the first NaN is returned), as PyTorch.
Tensor min(const Tensor& x);
Tensor min(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
// Index (int32) of the first maximum along `dim`; over all elements (flat row-major index) without dim.
// A NaN counts as the maximum (the first NaN). Not differentiable. int32, not PyTorch's int64: dyad's
// indices into one dim are int32 (max's, max_pool2d's), and the comparisons promote, so
// eq(argmax(logits, 1), int64_labels) works as it is.
Tensor argmax(const Tensor& x);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
// The same for the first minimum (a NaN counts as the minimum here, as in min).
Tensor argmin(const Tensor& x);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);

// ---------------------------------------------------------------------------- index
// Indices are int32 or int64 (PyTorch's dtype) on x's device; x is float32 or float64 with at most 8 dims.
// Index values must lie in [0, size of the indexed dim) (no negative indices, as in PyTorch's gather). On
// the CPU a bad one is an error naming its value and position; on a GPU the values are not read back: the
// kernel records the first bad one, whose output element is NaN, and the next wait (item(), to(cpu),
// synchronize()) throws a dyad::Error naming it, as cross_entropy does for labels.

// out[i][j][k] = x[index[i][j][k]][j][k] for dim 0 (likewise for the other dims): out has index's shape.
// index has as many dims as x and is no larger than x in every dim but `dim`. Differentiable in x: each
// out element's gradient is added to the x element it came from (repeated indices add up, in row-major
// order of the index: deterministic, and the same bits on the CPU and the GPU).
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
// The slices of x at the given positions along `dim`: out has x's shape with that dim of index's length
// (index 1-D, or 0-d for one position), out[..., j, ...] = x[..., index[j], ...]. Positions may repeat.
// Differentiable in x, with gather's rule (it is a gather of the index broadcast along the other dims).
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);

// The k largest (smallest when !largest) elements along `dim` and their positions (int64, as PyTorch):
// values and indices have x's shape with `dim` of size k, 0 <= k <= x.size(dim). Order: largest first
// (smallest first), ties by the lower position; NaN counts as larger than every number, as in PyTorch's
// sort and topk (first when largest, never among the smallest while numbers remain). The result is always
// sorted: sorted = false (PyTorch: unspecified order) gives the same order. Differentiable in the values:
// the gradient goes to the positions in indices (values = gather(x, dim, indices)).
struct TopK {
    Tensor values;
    Tensor indices;
};
TopK topk(const Tensor& x, int64_t k, int64_t dim = -1, bool largest = true, bool sorted = true);

// ---------------------------------------------------------------------------- gemm
// Matrix product. a: (M, K) or (B, M, K); b: (K, N) or (B, K, N); a 2-D operand is shared by every
// batch. Result (M, N) or (B, M, N). Transposed views (x.t(), x.transpose(-2, -1)) are used as they are,
// without a copy: the GEMM kernel reads them transposed.
Tensor matmul(const Tensor& a, const Tensor& b);

// ---------------------------------------------------------------------------- neural network
// Image tensors are NCHW. Sizes given as Size2 accept one value for both dims (2) or {h, w}.
struct Size2 {
    int64_t h = 0, w = 0;
    Size2() = default;
    Size2(int64_t v) : h(v), w(v) {}  // NOLINT(google-explicit-constructor): max_pool2d(x, 2)
    Size2(int64_t h_, int64_t w_) : h(h_), w(w_) {}
    bool operator==(const Size2& o) const { return h == o.h && w == o.w; }
};

// 2-D convolution (cross-correlation, as in PyTorch): x (N, C, H, W), weight (K, C, R, S), bias (K) or
// undefined. Output (N, K, P, Q) with P = (H + 2*pad_h - R) / stride_h + 1 (likewise Q). Dilation 1,
// groups 1. Errors: rank, channel mismatch, bias shape, stride < 1, padding < 0, a kernel larger than
// the padded input, an empty batch.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), Size2 stride = 1,
              Size2 padding = 0);
// relu(conv2d(x, weight, bias, stride, padding)), the ReLU fused into the convolution's forward pass on a
// GPU (one cuDNN call where cuDNN supports it; the CPU runs conv2d's kernels, then relu's). Same arguments,
// checks and errors as conv2d (named conv2d_relu). Gradient: dy where the output is > 0 (0 where it is
// <= 0, as relu), then conv2d's.
Tensor conv2d_relu(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), Size2 stride = 1,
                   Size2 padding = 0);

// Max pooling over kernel windows. stride 0 means stride = kernel. Padding (at most half the kernel, as
// in PyTorch) is -inf. Output P = (H + 2*pad - kernel) / stride + 1 (floor). Backward routes each output's
// gradient to its window's first maximum (row-major order within the window); NaN wins.
Tensor max_pool2d(const Tensor& x, Size2 kernel, Size2 stride = 0, Size2 padding = 0);
// max_pool2d(relu(x), kernel, stride, padding): the same values bit for bit (NaN and -0.0 included) and
// the same gradient (dy goes to the window's first maximum where the output is > 0, nowhere where it is 0
// or NaN; bit for bit too when x has no other consumer). It exists to read the activation once instead
// of twice: one pass forward and one backward, where the pair also writes and reads back the full-size
// relu output and its gradient. Same arguments and checks as max_pool2d (errors named relu_max_pool2d).
Tensor relu_max_pool2d(const Tensor& x, Size2 kernel, Size2 stride = 0, Size2 padding = 0);
// Average pooling; padded zeros count in the divisor (PyTorch's count_include_pad=true), so the divisor
// is always kernel_h * kernel_w.
Tensor avg_pool2d(const Tensor& x, Size2 kernel, Size2 stride = 0, Size2 padding = 0);
// Average over adaptive windows: output row i covers input rows [floor(i*H/P), ceil((i+1)*H/P)) as in
// PyTorch. output {1, 1} is global average pooling.
Tensor adaptive_avg_pool2d(const Tensor& x, Size2 output);

// y = x @ weight^T + bias. x (..., in), weight (out, in) as in PyTorch, bias (out) or undefined.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// Training: each element is zeroed with probability p and the survivors are scaled by 1/(1-p); the mask
// comes from the generator seeded by manual_seed (a counter-based hash of one 64-bit draw per call, so
// every device draws the same mask). Not training, or p == 0: returns x unchanged (the same tensor).
// p must be in [0, 1); p == 1 is an error.
Tensor dropout(const Tensor& x, double p, bool training);

// Batch normalisation over (N, H, W) per channel of x (N, C, H, W).
// Training: normalises with the batch mean and biased variance; when running_mean/running_var are
// defined they are updated in place (without autograd) as running = (1 - momentum) * running +
// momentum * batch_stat, with the unbiased variance (n / (n - 1)) as in PyTorch. Needs N*H*W > 1.
// Not training: normalises with running_mean/running_var (which must then be defined).
// weight (gamma) and bias (beta), shape (C), may be undefined (no affine transform).
Tensor batch_norm2d(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                    const Tensor& bias, bool training, double momentum = 0.1, double eps = 1e-5);
// relu(batch_norm2d(...)) with the same arguments and results, in one pass over x on the CPU (the backward
// masks dy by the output as it goes, so the pair makes no pass of its own); two ops on the GPU.
Tensor batch_norm2d_relu(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                         const Tensor& bias, bool training, double momentum = 0.1, double eps = 1e-5);

// Along `dim` (negative counts from the end), numerically stable (the maximum is subtracted first).
Tensor softmax(const Tensor& x, int64_t dim = -1);
Tensor log_softmax(const Tensor& x, int64_t dim = -1);

// Mean over the batch of -sum_c q_c * log_softmax(logits)_c, where q is the one-hot label smoothed as
// q = (1 - label_smoothing) * onehot + label_smoothing / C (PyTorch's definition). logits (N, C) float,
// labels (N) int32 or int64 (PyTorch's dtype; the same results) in [0, C) on the same device. Fused: one
// pass for the loss (log-sum-exp per row kept) and one for the gradient, (softmax - q) / N times the
// incoming gradient. Result shape ().
Tensor cross_entropy(const Tensor& logits, const Tensor& labels, double label_smoothing = 0.0);

// Elementwise test for finite values: uint8 tensor, 1 where x is neither inf nor NaN. Not differentiable.
Tensor isfinite(const Tensor& x);
// True when every element of x is finite (one pass, no temporary).
bool all_finite(const Tensor& x);

// ---------------------------------------------------------------------------- image batches
// The training augmentation of small image classifiers, applied while a batch is assembled.
struct ImageAugment {
    int64_t out_h = 0, out_w = 0;  // output size; 0 = the stored size
    int64_t pad = 0;               // zero padding on every side before the window is taken, in [0, 16383]
    bool crop = false;             // a random window of the padded image; else the centred window
    bool flip = false;             // a random horizontal flip (probability 1/2 per sample)
};

// A normalised float batch from a data set of uint8 images held in memory. images: uint8 (count, h, w, c),
// HWC per image as decoders produce, on any device (keep it on the GPU and only the indices travel);
// indices: int32 (batch) on the same device. Result: float32 (batch, c, out_h, out_w) on that device with
//   out[b, ch, y, x] = (pixel / 255 - mean[ch]) * (1 / std[ch])   (the reciprocal rounded to float once)
// read from image indices[b] through sample b's crop window (dy, dx in [0, 2 * pad]) and flip, drawn from
// (seed, b) by a counter-based hash: the same seed gives the same batch on every device and thread count
// (kernels/image.h has the exact rule). Padding reads as pixel 0. mean and std have c entries, std > 0.
// The window must fit the padded image: out_h <= h + 2 * pad, out_w <= w + 2 * pad. Indices on the CPU
// are checked (an index outside [0, count) is an error naming its position); indices on a GPU are not
// read back, and a sample with a bad index comes out as NaN. No autograd.
Tensor image_batch(const Tensor& images, const Tensor& indices, const std::vector<float>& mean,
                   const std::vector<float>& std, const ImageAugment& aug, uint64_t seed);

// ---------------------------------------------------------------------------- shape
// Free-function forms of Tensor's view methods.
Tensor reshape(const Tensor& x, const Shape& shape);
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1);
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims);
Tensor squeeze(const Tensor& x, int64_t dim);
Tensor unsqueeze(const Tensor& x, int64_t dim);

// Joins tensors along an existing dim (negative counts from the end): every tensor has the same number of
// dims (at least 1), dtype (any) and device, and the same sizes in every other dim; sizes along dim may
// differ, 0 included. Result: a new contiguous tensor; the inputs are copied in order. Differentiable
// (floating): each input receives its slice of the gradient.
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
// Joins tensors of one shape along a new dim inserted at `dim` (in [-(ndim + 1), ndim]): the result has
// shape (..., count, ...). Differentiable like cat (it is unsqueeze, then cat).
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);

// Shape that a and b broadcast to; throws naming `op` and both shapes when they do not.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op = "broadcast");

}  // namespace dyad

DYAD_PUBLIC_END
