#pragma once
// Reading files that may be hostile: the one place that opens a file for reading by path.
//
// requires: nothing of the path; a directory, FIFO, device or socket is refused before it is
//           read, and the open itself uses O_NONBLOCK, so a FIFO (or a FIFO swapped in after
//           the check) never blocks the caller.
// ensures:  every failure throws xgrad::Error "<who>: <path>: ..." saying what the path is
//           ("does not exist", "is not a regular file (it is a FIFO)", the system's reason).
#include <cstddef>
#include <cstdint>
#include <string>

namespace xgrad::detail {

class RegularFile {
 public:
  // Opens `path` read-only; `who` (e.g. "load_npy") starts every error message.
  RegularFile(const std::string& path, const char* who);
  ~RegularFile();
  RegularFile(const RegularFile&) = delete;
  RegularFile& operator=(const RegularFile&) = delete;

  // The size in bytes when it was opened.
  std::uint64_t size() const { return size_; }
  // Reads up to n bytes at offset into dst; returns how many, fewer only at the end of the file.
  std::size_t read_at(std::uint64_t offset, void* dst, std::size_t n) const;
  // Gives up the descriptor (e.g. to zlib's gzdopen, which closes it).
  int release();

 private:
  std::string path_;
  const char* who_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

}  // namespace xgrad::detail
