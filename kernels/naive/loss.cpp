// Softmax, log-softmax and cross-entropy kernels, naive: the obvious loops, every sum in double so the
// reference is the accurate one. x is (outer, reduce, inner); one "row" is the reduce dim at fixed
// (outer, inner).
#include "../loss.h"

#include <cmath>

namespace dyad::naive {

namespace {

// Maximum of a strided row (the first element when all are -inf; NaN does not matter: it reaches every
// result through the sum of exponentials anyway).
template <typename T>
double row_max(const T* x, int64_t n, int64_t stride) {
    double m = n > 0 ? double(x[0]) : 0.0;
    for (int64_t r = 1; r < n; r++) m = std::fmax(m, double(x[r * stride]));
    return m;
}

// max and log(sum(exp(x - max))) of a strided row.
template <typename T>
void row_lse(const T* x, int64_t n, int64_t stride, double& m, double& log_sum) {
    m = row_max(x, n, stride);
    double s = 0;
    for (int64_t r = 0; r < n; r++) s += std::exp(double(x[r * stride]) - m);
    log_sum = std::log(s);
}

}  // namespace

template <typename T>
void softmax_fwd(const ReduceShape& s, T* y, const T* x) {
    for (int64_t o = 0; o < s.outer; o++)
        for (int64_t i = 0; i < s.inner; i++) {
            const int64_t base = o * s.reduce * s.inner + i;
            const double m = row_max(x + base, s.reduce, s.inner);
            double sum = 0;
            for (int64_t r = 0; r < s.reduce; r++) sum += std::exp(double(x[base + r * s.inner]) - m);
            for (int64_t r = 0; r < s.reduce; r++) {
                const int64_t k = base + r * s.inner;
                y[k] = T(std::exp(double(x[k]) - m) / sum);
            }
        }
}

template <typename T>
void softmax_bwd(const ReduceShape& s, T* dx, const T* dy, const T* y) {
    for (int64_t o = 0; o < s.outer; o++)
        for (int64_t i = 0; i < s.inner; i++) {
            const int64_t base = o * s.reduce * s.inner + i;
            double dot = 0;
            for (int64_t r = 0; r < s.reduce; r++)
                dot += double(dy[base + r * s.inner]) * double(y[base + r * s.inner]);
            for (int64_t r = 0; r < s.reduce; r++) {
                const int64_t k = base + r * s.inner;
                dx[k] += T(double(y[k]) * (double(dy[k]) - dot));
            }
        }
}

template <typename T>
void log_softmax_fwd(const ReduceShape& s, T* y, const T* x) {
    for (int64_t o = 0; o < s.outer; o++)
        for (int64_t i = 0; i < s.inner; i++) {
            const int64_t base = o * s.reduce * s.inner + i;
            double m, log_sum;
            row_lse(x + base, s.reduce, s.inner, m, log_sum);
            for (int64_t r = 0; r < s.reduce; r++) {
                const int64_t k = base + r * s.inner;
                y[k] = T(double(x[k]) - m - log_sum);
            }
        }
}

template <typename T>
void log_softmax_bwd(const ReduceShape& s, T* dx, const T* dy, const T* y) {
    for (int64_t o = 0; o < s.outer; o++)
        for (int64_t i = 0; i < s.inner; i++) {
            const int64_t base = o * s.reduce * s.inner + i;
            double sum = 0;
            for (int64_t r = 0; r < s.reduce; r++) sum += double(dy[base + r * s.inner]);
            for (int64_t r = 0; r < s.reduce; r++) {
                const int64_t k = base + r * s.inner;
                dx[k] += T(double(dy[k]) - std::exp(double(y[k])) * sum);
            }
        }
}

template <typename T, typename L>
void cross_entropy_fwd(int64_t n, int64_t c, T* loss, T* lse, const T* logits, const L* labels, T eps) {
    const double e = double(eps);
    double total = 0;
    for (int64_t row = 0; row < n; row++) {
        const T* x = logits + row * c;
        double m, log_sum;
        row_lse(x, c, 1, m, log_sum);
        const double l = m + log_sum;
        double sum_x = 0;
        if (e != 0)
            for (int64_t j = 0; j < c; j++) sum_x += double(x[j]);
        lse[row] = T(l);
        total += l - (1 - e) * double(x[labels[row]]) - (e != 0 ? e / double(c) * sum_x : 0.0);
    }
    loss[0] = T(total / double(n));
}

template <typename T, typename L>
void cross_entropy_bwd(int64_t n, int64_t c, T* dlogits, const T* dloss, const T* logits, const T* lse, const L* labels,
                       T eps) {
    const double e = double(eps), g = double(dloss[0]) / double(n), smooth = e / double(c);
    for (int64_t row = 0; row < n; row++) {
        const T* x = logits + row * c;
        T* dx = dlogits + row * c;
        const double l = double(lse[row]);
        for (int64_t j = 0; j < c; j++) {
            const double q = (j == int64_t(labels[row]) ? 1 - e : 0.0) + smooth;
            dx[j] += T(g * (std::exp(double(x[j]) - l) - q));
        }
    }
}

#define DYAD_INSTANTIATE_CE(T, L)                                                           \
    template void cross_entropy_fwd<T, L>(int64_t, int64_t, T*, T*, const T*, const L*, T); \
    template void cross_entropy_bwd<T, L>(int64_t, int64_t, T*, const T*, const T*, const T*, const L*, T);
#define DYAD_INSTANTIATE(T)                                                       \
    template void softmax_fwd<T>(const ReduceShape&, T*, const T*);               \
    template void softmax_bwd<T>(const ReduceShape&, T*, const T*, const T*);     \
    template void log_softmax_fwd<T>(const ReduceShape&, T*, const T*);           \
    template void log_softmax_bwd<T>(const ReduceShape&, T*, const T*, const T*); \
    DYAD_INSTANTIATE_CE(T, int32_t)                                               \
    DYAD_INSTANTIATE_CE(T, int64_t)
DYAD_INSTANTIATE(float)
DYAD_INSTANTIATE(double)

}  // namespace dyad::naive
