// What libdyad exports. The library is built with hidden visibility: only the declarations of the public
// headers (include/dyad/), each wrapped in DYAD_PUBLIC_BEGIN ... DYAD_PUBLIC_END, are visible to programs
// that link it; kernels, op frontends' helpers and test hooks are not. DYAD_API marks one declaration
// outside such a region. There is no ABI promise before version 1.0: rebuild against each new version.
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define DYAD_API __attribute__((visibility("default")))
#define DYAD_PUBLIC_BEGIN _Pragma("GCC visibility push(default)")
#define DYAD_PUBLIC_END _Pragma("GCC visibility pop")
#else
#define DYAD_API
#define DYAD_PUBLIC_BEGIN
#define DYAD_PUBLIC_END
#endif
