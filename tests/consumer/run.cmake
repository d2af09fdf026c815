# Builds and runs a consumer project: cmake -DMODE=package|subdir -DSRC=<dyad source> -DBIN=<dyad build>
#   -DWORK=<scratch dir> -P run.cmake
# package: installs the dyad build into WORK/prefix and builds tests/consumer/app with find_package.
# subdir:  builds tests/consumer/subdir, which add_subdirectory()s the dyad source tree.
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()

file(REMOVE_RECURSE "${WORK}")
if(MODE STREQUAL "package")
  run(${CMAKE_COMMAND} --install "${BIN}" --prefix "${WORK}/prefix")
  run(${CMAKE_COMMAND} -S "${SRC}/tests/consumer/app" -B "${WORK}/build" -DCMAKE_PREFIX_PATH=${WORK}/prefix
      -DCMAKE_BUILD_TYPE=Release)
elseif(MODE STREQUAL "subdir")
  run(${CMAKE_COMMAND} -S "${SRC}/tests/consumer/subdir" -B "${WORK}/build" -DDYAD_SOURCE_DIR=${SRC}
      -DCMAKE_BUILD_TYPE=Release)
else()
  message(FATAL_ERROR "MODE must be package or subdir")
endif()
run(${CMAKE_COMMAND} --build "${WORK}/build" -j 2)
run("${WORK}/build/consumer")
if(MODE STREQUAL "package")
  # Once more with the loader's cache of /etc/ld.so.conf folders switched off, as on a machine whose loader
  # does not know the folder of the CUDA libraries: the installed libdyad must find them by its own run
  # path. (A CPU-only build needs nothing outside the system folders, and passes the same way.)
  file(GLOB loader /lib64/ld-linux-x86-64.so.2 /lib/ld-linux-aarch64.so.1)
  if(loader)
    list(GET loader 0 loader)
    run("${loader}" --inhibit-cache "${WORK}/build/consumer")
  endif()
endif()
