#include <xgrad/core/regular_file.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <xgrad/core/error.hpp>

namespace xgrad::detail {

namespace {

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

}  // namespace

RegularFile::RegularFile(const std::string& path, const char* who) : path_(path), who_(who) {
  // Refuse what is not a regular file before opening it: opening a FIFO for reading blocks
  // until a writer comes. O_NONBLOCK and the fstat below cover a file swapped in between.
  XGRAD_CHECK(path.find('\0') == std::string::npos, who, ": ", path, ": the path contains a NUL byte");
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    XGRAD_CHECK(err != ENOENT, who, ": ", path, ": cannot open: does not exist");
    throw Error(cat(who, ": ", path, ": cannot open: ", std::strerror(err)));
  }
  XGRAD_CHECK(S_ISREG(st.st_mode), who, ": ", path, ": is not a regular file (it is ", file_kind(st.st_mode), ")");
  fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  XGRAD_CHECK(fd_ >= 0, who, ": ", path, ": cannot open: ", std::strerror(errno));
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd_);
    throw Error(cat(who, ": ", path, ": is not a regular file"));
  }
  size_ = static_cast<std::uint64_t>(st.st_size);
}

RegularFile::~RegularFile() {
  if (fd_ >= 0) ::close(fd_);
}

std::size_t RegularFile::read_at(std::uint64_t offset, void* dst, std::size_t n) const {
  XGRAD_CHECK(fd_ >= 0, who_, ": ", path_, ": read after the file was released");
  auto* out = static_cast<char*>(dst);
  std::size_t done = 0;
  while (done < n) {
    // pread moves at most 0x7ffff000 bytes at a time on Linux.
    const std::size_t chunk = std::min<std::size_t>(n - done, std::size_t(1) << 30);
    const ssize_t got = ::pread(fd_, out + done, chunk, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    XGRAD_CHECK(got >= 0, who_, ": ", path_, ": read error: ", std::strerror(errno));
    if (got == 0) break;
    done += static_cast<std::size_t>(got);
  }
  return done;
}

int RegularFile::release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

}  // namespace xgrad::detail
