// CUDA tests for loss: cuda vs naive.
#include <catch2/catch.hpp>
