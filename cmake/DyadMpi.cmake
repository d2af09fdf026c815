# MPI detection. DYAD_WITH_MPI: AUTO builds the distributed API on MPI when an MPI implementation with its
# compiler wrappers is found (Debian: libopenmpi-dev, which scripts/setup.sh installs), and says in one line
# why not otherwise; ON fails loudly; OFF never looks. Without MPI, dyad::dist runs one process alone and
# refuses a launch of several ranks. Result: DYAD_MPI_ENABLED (ON/OFF) and, when ON, MPI::MPI_CXX and
# DYAD_MPIEXEC (the launcher the tests use).
set(DYAD_MPI_ENABLED OFF)
string(TOUPPER "${DYAD_WITH_MPI}" _dyad_mpi_mode)
if(NOT _dyad_mpi_mode MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "DYAD_WITH_MPI must be AUTO, ON or OFF, not '${DYAD_WITH_MPI}'")
endif()
if(_dyad_mpi_mode STREQUAL "OFF")
  message(STATUS "dyad: MPI off: DYAD_WITH_MPI=OFF")
else()
  set(MPI_CXX_SKIP_MPICXX ON)  # the C API from C++, not the deprecated C++ bindings
  find_package(MPI QUIET COMPONENTS CXX)
  if(MPI_CXX_FOUND AND MPIEXEC_EXECUTABLE)
    set(DYAD_MPI_ENABLED ON)
    set(DYAD_MPIEXEC "${MPIEXEC_EXECUTABLE}")
    message(STATUS "dyad: MPI on: MPI ${MPI_CXX_VERSION} (${MPI_CXX_LIB_NAMES}), launcher ${MPIEXEC_EXECUTABLE}")
  elseif(_dyad_mpi_mode STREQUAL "ON")
    message(FATAL_ERROR "DYAD_WITH_MPI=ON but no MPI with its launcher was found (Debian: libopenmpi-dev and "
                        "openmpi-bin; bash scripts/setup.sh installs them)")
  else()
    message(STATUS "dyad: MPI off: no MPI found (Debian: libopenmpi-dev and openmpi-bin; bash scripts/setup.sh "
                   "installs them)")
  endif()
endif()

# NCCL for GPU ranks: found with the CUDA toolkit (CUDA 13 ships nccl.h and libnccl.so.2), used only with
# the CUDA backend and MPI (which bootstraps it). Result: DYAD_NCCL_ENABLED and, when ON, DYAD_NCCL_INCLUDE_DIR
# and DYAD_NCCL_LIBRARY.
set(DYAD_NCCL_ENABLED OFF)
if(DYAD_CUDA_ENABLED AND DYAD_MPI_ENABLED)
  find_path(DYAD_NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
  find_library(DYAD_NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR})
  if(DYAD_NCCL_INCLUDE_DIR AND DYAD_NCCL_LIBRARY)
    set(DYAD_NCCL_ENABLED ON)
    message(STATUS "dyad: NCCL on (GPU ranks): ${DYAD_NCCL_LIBRARY}")
  else()
    message(STATUS "dyad: NCCL off: nccl.h or libnccl not found with the CUDA toolkit (GPU ranks unavailable)")
  endif()
elseif(DYAD_CUDA_ENABLED)
  message(STATUS "dyad: NCCL off: GPU ranks need MPI to bootstrap NCCL, and MPI is off")
endif()
