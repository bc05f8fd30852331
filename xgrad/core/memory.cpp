#include "xgrad/core/memory.hpp"

#include <climits>
#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define XGRAD_MALLOC_REPLACED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define XGRAD_MALLOC_REPLACED 1
#endif
#endif

namespace xgrad {

namespace {

MemoryRetention apply() {
  MemoryRetention r;
#if !defined(__GLIBC__)
  r.reason = "the C library is not glibc";
#elif defined(XGRAD_MALLOC_REPLACED)
  r.reason = "a sanitizer replaces malloc";
#else
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr || std::getenv("MALLOC_TRIM_THRESHOLD_") != nullptr ||
      (tunables != nullptr && std::strstr(tunables, "glibc.malloc.") != nullptr)) {
    r.reason = "the environment sets glibc's malloc tunables";
    return r;
  }
  // glibc accepts mapping thresholds up to 4 Mi x sizeof(long) bytes (32 MiB on 64-bit systems);
  // try that, then halve. Setting it also stops glibc's own raising of the threshold.
  std::size_t threshold = std::size_t{4} * 1024 * 1024 * sizeof(long);
  while (threshold >= (std::size_t{1} << 20) && mallopt(M_MMAP_THRESHOLD, static_cast<int>(threshold)) != 1) {
    threshold /= 2;
  }
  if (threshold < (std::size_t{1} << 20)) {
    r.reason = "malloc refused a mapping threshold of 1 MiB or more";
    return r;
  }
  if (mallopt(M_TRIM_THRESHOLD, INT_MAX) != 1) {
    r.reason = "malloc refused the trim threshold";
    return r;
  }
  r.applied = true;
  r.largest_reused_block = threshold;
#endif
  return r;
}

}  // namespace

MemoryRetention retain_freed_memory() {
  static const MemoryRetention result = apply();
  return result;
}

}  // namespace xgrad
