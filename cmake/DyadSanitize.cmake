# Sanitizers and fuzzing, for every target of the build (see docs/reliability.md).
#   DYAD_SANITIZE: a -fsanitize= list, e.g. "address,undefined" or "thread" (empty: none).
#   DYAD_FUZZ:     build the libFuzzer targets in tests/fuzz (clang only); the library and the tests are
#                  compiled with -fsanitize=fuzzer-no-link so that the fuzzer sees their coverage.
set(DYAD_SANITIZE "" CACHE STRING "Sanitizers for every target: a -fsanitize= list such as address,undefined")
option(DYAD_FUZZ "Build the libFuzzer targets (clang only)" OFF)

if(DYAD_SANITIZE)
  message(STATUS "dyad: sanitizers ${DYAD_SANITIZE}")
  # Every UBSan finding is fatal (a test fails) instead of a message the run scrolls past.
  add_compile_options(-fsanitize=${DYAD_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all
                      -gline-tables-only)
  # UBSan's checks can keep an `omp simd` loop from vectorising, which clang reports as a warning (an error
  # with DYAD_WERROR): the loops stay correct, only slower, which does not matter in a sanitizer build.
  add_compile_options(-Wno-pass-failed)
  add_link_options(-fsanitize=${DYAD_SANITIZE})
endif()

if(DYAD_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "DYAD_FUZZ needs clang (libFuzzer); this build uses ${CMAKE_CXX_COMPILER_ID}. "
                        "Use the 'sanitize' preset, which selects clang++.")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
