#pragma once
// What the fuzz targets share: a private temporary directory for the files a target writes,
// and the rule that a parser answers any input with a result or an xgrad::Error.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <xgrad/core/error.hpp>

namespace xgrad::fuzz {

// A directory of this process under TMPDIR (scripts/fuzz.sh points it at /dev/shm), removed
// at exit. libFuzzer runs the target's inputs one after the other in one process.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    auto path = std::filesystem::temp_directory_path() / ("xgrad-fuzz-" + std::to_string(::getpid()));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
    static struct Remove {
      std::filesystem::path path;
      ~Remove() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
      }
    } remove{path};
    return path;
  }();
  return dir;
}

inline void write_file(const std::filesystem::path& path, const void* data, std::size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out.good()) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
}

// A property the parser broke: report and abort, which libFuzzer records as a crash.
[[noreturn]] inline void violated(const char* what) {
  std::fprintf(stderr, "fuzz: property violated: %s\n", what);
  std::abort();
}

// Runs f; an xgrad::Error is a valid answer (returns false), any other exception escapes to
// std::terminate, which libFuzzer reports as a crash.
template <class F>
bool succeeds(F&& f) {
  try {
    f();
    return true;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace xgrad::fuzz
