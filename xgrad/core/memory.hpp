#pragma once
// Memory reuse between training steps.
//
// Every step allocates its activations and gradients afresh (tensors own their storage) and
// frees them when the tape is cleared. With glibc's default malloc settings, blocks above a
// threshold (128 KiB, raised as large blocks are freed) are mapped and unmapped for each
// allocation, and freed memory at the top of the heap is handed back to the operating system, so
// the next step takes the same memory again, page fault by page fault (about 27,000 minor faults
// per step of the AlexNet preset at batch 16: bench/README.md has what they cost).
//
// retain_freed_memory() asks malloc to keep what the process frees for the next allocations:
// blocks up to `largest_reused_block` bytes are taken from the heap, and the heap is not trimmed.
// The cost is that memory freed at the end of a run's largest step stays in the process's
// resident set until it exits. Tensors are 64-byte aligned, and glibc's aligned allocations
// leave small in-use chunks beside each block, so the heap can still grow now and then while
// its holes settle over the first steps. It changes process-wide malloc settings, so it is the
// application's choice: call it once at start-up (alexnet_example and bench_train do). Results
// are unchanged; only where memory comes from changes.
#include <cstddef>
#include <string>

namespace xgrad {

struct MemoryRetention {
  bool applied = false;
  std::size_t largest_reused_block = 0;  // bytes; larger blocks are still mapped per allocation
  std::string reason;                    // why not, when not applied
};

// Not applied (and nothing changed) when the C library is not glibc, when a sanitizer replaces
// malloc, or when the environment already sets glibc's malloc tunables (MALLOC_MMAP_THRESHOLD_,
// MALLOC_TRIM_THRESHOLD_ or glibc.malloc.* in GLIBC_TUNABLES), which are the user's to keep.
// Calling it again returns the first call's result.
MemoryRetention retain_freed_memory();

}  // namespace xgrad
