// CUDA tests for norm: cuda vs naive.
#include <catch2/catch.hpp>
