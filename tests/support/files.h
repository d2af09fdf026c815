// Files for tests that read and write them: a per-file output folder under the build's test directory
// (DYAD_TEST_OUTPUT_DIR) and whole-file reads and writes.
#pragma once
#include "support/catch.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace dyad::test {

// DYAD_TEST_OUTPUT_DIR/<name>/<file>, the folder created on first use.
inline std::string output_path(const std::string& name, const std::string& file) {
    const std::filesystem::path dir = std::filesystem::path(DYAD_TEST_OUTPUT_DIR) / name;
    std::filesystem::create_directories(dir);
    return (dir / file).string();
}

// DYAD_TEST_OUTPUT_DIR/<group>/<name>, emptied: a case's own folder, fresh on every run.
inline std::string fresh_dir(const std::string& group, const std::string& name) {
    const std::filesystem::path d = std::filesystem::path(DYAD_TEST_OUTPUT_DIR) / group / name;
    std::filesystem::remove_all(d);
    std::filesystem::create_directories(d);
    return d.string();
}

inline std::string read_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), std::streamsize(bytes.size()));
    REQUIRE(f.good());
}

}  // namespace dyad::test
