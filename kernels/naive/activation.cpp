// Activation kernels, naive.
#include "../activation.h"

namespace dyad::naive {

template <typename T>
void relu_fwd(T* y, const T* x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] < T(0) ? T(0) : x[i];  // NaN < 0 is false: NaN stays
}

template <typename T>
void relu_bwd(T* dx, const T* dy, const T* x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (x[i] > T(0)) dx[i] += dy[i];
}

template void relu_fwd<float>(float*, const float*, int64_t);
template void relu_fwd<double>(double*, const double*, int64_t);
template void relu_bwd<float>(float*, const float*, const float*, int64_t);
template void relu_bwd<double>(double*, const double*, const double*, int64_t);

}  // namespace dyad::naive
