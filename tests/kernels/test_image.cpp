// Image batch kernels (uint8 HWC data set -> augmented, normalised float NCHW): naive reference values,
// omp-vs-naive parity.
#include <catch2/catch.hpp>
