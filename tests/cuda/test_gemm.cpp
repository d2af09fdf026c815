// CUDA tests for gemm: cuda vs naive.
#include <catch2/catch.hpp>
