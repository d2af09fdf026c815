# libdyad exports its public API (include/dyad/) and nothing internal (kernels, op helpers, test hooks):
#   cmake -DLIB=<libdyad.so> -DNM=<nm> -DCUDA=<0|1> -P exports.cmake
execute_process(COMMAND ${NM} -D --defined-only -C ${LIB} OUTPUT_VARIABLE syms RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NM} failed on ${LIB}")
endif()
set(problems "")
# Public: the API users call, and what exceptions and virtual calls need across the library boundary.
set(required "dyad::Tensor::randn(" "dyad::conv2d(" "dyad::nn::Module::state_dict(" "dyad::optim::AdamW::AdamW("
             "dyad::io::save(" "dyad::data::Loader::next(" "dyad::autograd::apply(" "dyad::cuda::shutdown()"
             "typeinfo for dyad::Error" "vtable for dyad::nn::Module" "dyad::CapturedStep::"
             "dyad::dist::all_reduce(" "dyad::dist::DataParallel::DataParallel(" "dyad::dist::sync_batch_norm2d("
             "dyad::Tensor::register_post_accumulate_grad_hook(")
# Internal: kernel sets, frontend helpers, the tape's internals, the runtime below the public API.
set(forbidden "dyad::naive::" "dyad::omp::" "dyad::autograd::record(" "dyad::autograd::needs_grad("
              "dyad::autograd::queue_callback(" "dyad::dist::detail::"
              "dyad::detail::make_tensor(" "dyad::detail::global_generator(" "dyad::detail::host_alloc(")
if(CUDA)
  list(APPEND forbidden "dyad::cuda::conv2d_fwd(" "dyad::cuda::conv_algo::" "dyad::cuda::malloc_device("
       "dyad::cuda::sgd_step_multi(" "dyad::cuda::workspace(" "dyad::cuda::nccl::")
endif()
foreach(s IN LISTS required)
  string(FIND "${syms}" "${s}" at)
  if(at EQUAL -1)
    string(APPEND problems "\n  not exported: ${s}")
  endif()
endforeach()
foreach(s IN LISTS forbidden)
  string(FIND "${syms}" "${s}" at)
  if(NOT at EQUAL -1)
    string(APPEND problems "\n  exported but internal: ${s}")
  endif()
endforeach()
if(problems)
  message(FATAL_ERROR "${LIB}:${problems}")
endif()
string(REGEX MATCHALL "\n[0-9a-f]+ [TWVBDR] " defined "\n${syms}")
list(LENGTH defined n)
message(STATUS "${LIB}: ${n} symbols exported; the public ones present, no internal one")
