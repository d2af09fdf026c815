// The test framework, Catch2 v2 (Debian 12, Ubuntu 22.04) or v3 (Debian 13, Ubuntu 24.04), with the names
// dyad's tests use available under both: Catch::Contains, Catch::StartsWith, Catch::EndsWith (string
// matchers), Catch::MatcherBase, Approx.
// tests/CMakeLists.txt finds either and sets DYAD_CATCH2_VERSION.
#pragma once
#include <string>

#if DYAD_CATCH2_VERSION >= 3
#include <catch2/catch_all.hpp>
namespace Catch {
inline Matchers::StringContainsMatcher Contains(const std::string& s, CaseSensitive cs = CaseSensitive::Yes) {
    return Matchers::ContainsSubstring(s, cs);
}
using Matchers::EndsWith;
using Matchers::StartsWith;
template <typename T>
using MatcherBase = Matchers::MatcherBase<T>;
}  // namespace Catch
using Catch::Approx;
#else
#include <catch2/catch.hpp>
#endif
