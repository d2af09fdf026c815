// CUDA tests for image: cuda vs naive.
#include <catch2/catch.hpp>
