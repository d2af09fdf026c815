// 2-D convolution, the reference: direct loops (in either layout, through the shape's offsets) over every output
// (forward), every input element (backward data) and every filter tap (backward filter), each accumulated in T and
// written once.
#include "../conv.h"

namespace dyad::naive {

template <typename T>
void conv2d_fwd(const Conv2dShape& s, T* y, const T* x, const T* weight, const T* bias) {
    for (int64_t n = 0; n < s.n; n++)
        for (int64_t k = 0; k < s.k; k++)
            for (int64_t p = 0; p < s.p; p++)
                for (int64_t q = 0; q < s.q; q++) {
                    T acc = bias ? bias[k] : T(0);
                    for (int64_t c = 0; c < s.c; c++)
                        for (int64_t r = 0; r < s.r; r++) {
                            const int64_t ih = p * s.stride_h - s.pad_h + r;
                            if (ih < 0 || ih >= s.h) continue;
                            for (int64_t t = 0; t < s.s; t++) {
                                const int64_t iw = q * s.stride_w - s.pad_w + t;
                                if (iw < 0 || iw >= s.w) continue;
                                acc += x[s.x_at(n, c, ih, iw)] * weight[s.w_at(k, c, r, t)];
                            }
                        }
                    y[s.y_at(n, k, p, q)] = acc;
                }
}

// Each input element (n, c, ih, iw) gathers dy[n, k, p, q] * weight[k, c, r, t] over the outputs whose
// window covers it: ih = p * stride_h - pad_h + r, likewise for iw.
template <typename T>
void conv2d_bwd_data(const Conv2dShape& s, T* dx, const T* dy, const T* weight) {
    for (int64_t n = 0; n < s.n; n++)
        for (int64_t c = 0; c < s.c; c++)
            for (int64_t ih = 0; ih < s.h; ih++)
                for (int64_t iw = 0; iw < s.w; iw++) {
                    T acc = T(0);
                    for (int64_t k = 0; k < s.k; k++)
                        for (int64_t r = 0; r < s.r; r++) {
                            const int64_t ph = ih + s.pad_h - r;  // p * stride_h
                            if (ph < 0 || ph % s.stride_h != 0 || ph / s.stride_h >= s.p) continue;
                            const int64_t p = ph / s.stride_h;
                            for (int64_t t = 0; t < s.s; t++) {
                                const int64_t qw = iw + s.pad_w - t;  // q * stride_w
                                if (qw < 0 || qw % s.stride_w != 0 || qw / s.stride_w >= s.q) continue;
                                const int64_t q = qw / s.stride_w;
                                acc += dy[s.y_at(n, k, p, q)] * weight[s.w_at(k, c, r, t)];
                            }
                        }
                    dx[s.x_at(n, c, ih, iw)] += acc;
                }
}

template <typename T>
void conv2d_bwd_filter(const Conv2dShape& s, T* dweight, T* dbias, const T* dy, const T* x) {
    for (int64_t k = 0; k < s.k; k++) {
        for (int64_t c = 0; c < s.c; c++)
            for (int64_t r = 0; r < s.r; r++)
                for (int64_t t = 0; t < s.s; t++) {
                    T acc = T(0);
                    for (int64_t n = 0; n < s.n; n++)
                        for (int64_t p = 0; p < s.p; p++) {
                            const int64_t ih = p * s.stride_h - s.pad_h + r;
                            if (ih < 0 || ih >= s.h) continue;
                            for (int64_t q = 0; q < s.q; q++) {
                                const int64_t iw = q * s.stride_w - s.pad_w + t;
                                if (iw < 0 || iw >= s.w) continue;
                                acc += dy[s.y_at(n, k, p, q)] * x[s.x_at(n, c, ih, iw)];
                            }
                        }
                    dweight[s.w_at(k, c, r, t)] += acc;
                }
        if (dbias) {
            T acc = T(0);
            for (int64_t n = 0; n < s.n; n++)
                for (int64_t p = 0; p < s.p; p++)
                    for (int64_t q = 0; q < s.q; q++) acc += dy[s.y_at(n, k, p, q)];
            dbias[k] += acc;
        }
    }
}

template void conv2d_fwd<float>(const Conv2dShape&, float*, const float*, const float*, const float*);
template void conv2d_fwd<double>(const Conv2dShape&, double*, const double*, const double*, const double*);
template void conv2d_bwd_data<float>(const Conv2dShape&, float*, const float*, const float*);
template void conv2d_bwd_data<double>(const Conv2dShape&, double*, const double*, const double*);
template void conv2d_bwd_filter<float>(const Conv2dShape&, float*, float*, const float*, const float*);
template void conv2d_bwd_filter<double>(const Conv2dShape&, double*, double*, const double*, const double*);

}  // namespace dyad::naive
