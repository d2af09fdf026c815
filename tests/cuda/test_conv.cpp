// CUDA tests for conv: cuda vs naive.
#include <catch2/catch.hpp>
