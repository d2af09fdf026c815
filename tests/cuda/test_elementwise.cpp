// CUDA tests for elementwise: cuda vs naive.
#include <catch2/catch.hpp>
