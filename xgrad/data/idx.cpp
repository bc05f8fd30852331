#include <xgrad/data/idx.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iomanip>
#include <memory>
#include <new>
#include <sstream>

#include <xgrad/core/error.hpp>

namespace xgrad::data {

namespace {

std::string hex(unsigned char byte) {
  std::ostringstream out;
  out << "0x" << std::hex << std::setw(2) << std::setfill('0') << int(byte);
  return out.str();
}

// The IDX type codes, for the message that refuses all but 0x08.
const char* idx_type_name(unsigned char type) {
  switch (type) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return "not an IDX type";
  }
}

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// An IDX file open for reading through zlib, which decompresses gzip and reads any other
// file as it is. Every failure throws xgrad::Error prefixed with "read_idx: <path>: ".
class IdxFile {
 public:
  explicit IdxFile(const std::string& path) : path_(path) {
    // Refuse what is not a regular file before opening it: opening a FIFO for reading blocks
    // until a writer comes. O_NONBLOCK and the fstat below cover a file swapped in between.
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      const int err = errno;
      XGRAD_CHECK(err != ENOENT, "read_idx: ", path, ": does not exist");
      throw Error(cat("read_idx: ", path, ": cannot stat: ", std::strerror(err)));
    }
    XGRAD_CHECK(S_ISREG(st.st_mode), "read_idx: ", path, ": is not a regular file (it is ", file_kind(st.st_mode), ")");
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    XGRAD_CHECK(fd >= 0, "read_idx: ", path, ": cannot open: ", std::strerror(errno));
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      throw Error(cat("read_idx: ", path, ": is not a regular file"));
    }
    file_.reset(gzdopen(fd, "rb"));
    if (!file_) {
      ::close(fd);
      throw Error(cat("read_idx: ", path, ": cannot open: out of memory"));
    }
    gzbuffer(file_.get(), 1u << 17);
    // gzdirect looks at the first bytes: 1 for a plain file, 0 for gzip.
    const bool plain = gzdirect(file_.get()) == 1;
    check_stream();
    if (ends_with(path, ".gz")) {
      XGRAD_CHECK(!plain, "read_idx: ", path, ": gzip: the name ends in .gz but the file is not gzip data");
    } else {
      XGRAD_CHECK(plain, "read_idx: ", path, ": the file is gzip data but its name does not end in .gz");
    }
  }

  // Reads up to n bytes into dst; returns how many, fewer only at the end of the data.
  std::size_t read(void* dst, std::size_t n) {
    auto* out = static_cast<unsigned char*>(dst);
    std::size_t done = 0;
    while (done < n) {
      // gzread takes an unsigned count and refuses more than INT_MAX.
      const auto chunk = static_cast<unsigned>(std::min<std::size_t>(n - done, std::size_t(1) << 30));
      const int got = gzread(file_.get(), out + done, chunk);
      check_stream();
      if (got <= 0) break;
      done += static_cast<std::size_t>(got);
    }
    return done;
  }

  // Closes the file; zlib reports a gzip stream cut short here too.
  void close() {
    const int status = gzclose_r(file_.release());
    XGRAD_CHECK(status == Z_OK, "read_idx: ", path_, ": gzip: ",
                status == Z_BUF_ERROR ? "truncated compressed data" : "error on close");
  }

 private:
  void check_stream() {
    int status = Z_OK;
    const char* message = gzerror(file_.get(), &status);
    if (status == Z_OK) return;
    if (status == Z_ERRNO) throw Error(cat("read_idx: ", path_, ": read error: ", std::strerror(errno)));
    // zlib's message starts with the name it was given, "<fd:N>: ".
    std::string detail = message;
    const auto colon = detail.find(": ");
    if (colon != std::string::npos) detail = detail.substr(colon + 2);
    if (status == Z_BUF_ERROR) {
      throw Error(cat("read_idx: ", path_, ": gzip: truncated compressed data (zlib: ", detail, ")"));
    }
    if (status == Z_MEM_ERROR) throw Error(cat("read_idx: ", path_, ": gzip: out of memory"));
    throw Error(cat("read_idx: ", path_, ": gzip: corrupt compressed data (zlib: ", detail, ")"));
  }

  struct Close {
    void operator()(gzFile file) const { gzclose_r(file); }
  };
  std::string path_;
  std::unique_ptr<gzFile_s, Close> file_;
};

}  // namespace

IdxArray read_idx(const std::string& path, std::size_t dims) {
  IdxFile file(path);
  unsigned char head[4];
  std::size_t got = file.read(head, 4);
  XGRAD_CHECK(got == 4, "read_idx: ", path, ": truncated header: ", got, " bytes, an IDX header has at least 4");
  XGRAD_CHECK(head[0] == 0 && head[1] == 0, "read_idx: ", path, ": bad magic: the first two bytes are ", hex(head[0]),
              " ", hex(head[1]), ", an IDX file starts with 0x00 0x00");
  XGRAD_CHECK(head[2] == 0x08, "read_idx: ", path, ": type byte is ", hex(head[2]), " (", idx_type_name(head[2]),
              "), only 0x08 (unsigned byte) is supported");
  const std::size_t rank = head[3];
  XGRAD_CHECK(rank >= 1, "read_idx: ", path, ": number of dimensions is 0");
  XGRAD_CHECK(dims == 0 || rank == dims, "read_idx: ", path, ": number of dimensions is ", rank, ", expected ", dims);

  unsigned char sizes[4 * 255];
  got = file.read(sizes, 4 * rank);
  XGRAD_CHECK(got == 4 * rank, "read_idx: ", path, ": truncated header: ", got, " of the ", 4 * rank,
              " bytes of the sizes of ", rank, " dimensions");
  IdxArray array;
  array.shape.resize(rank);
  for (std::size_t d = 0; d < rank; ++d) {
    const unsigned char* b = sizes + 4 * d;
    array.shape[d] = (std::size_t(b[0]) << 24) | (std::size_t(b[1]) << 16) | (std::size_t(b[2]) << 8) | b[3];
    XGRAD_CHECK(array.shape[d] != 0, "read_idx: ", path, ": size of dimension ", d, " is 0 (sizes ",
                shape_str(array.shape), ")");
  }
  const auto count = checked_numel(array.shape);
  XGRAD_CHECK(count.has_value(), "read_idx: ", path, ": sizes ", shape_str(array.shape),
              ": their product overflows size_t");
  XGRAD_CHECK(*count <= kMaxIdxElements, "read_idx: ", path, ": sizes ", shape_str(array.shape), " hold ", *count,
              " values, more than the limit of ", kMaxIdxElements);

  try {
    array.bytes.resize(*count);
  } catch (const std::bad_alloc&) {
    throw Error(cat("read_idx: ", path, ": cannot allocate ", *count, " bytes for sizes ", shape_str(array.shape)));
  }
  got = file.read(array.bytes.data(), *count);
  XGRAD_CHECK(got == *count, "read_idx: ", path, ": truncated data: sizes ", shape_str(array.shape), " need ", *count,
              " bytes, the file holds ", got);
  // Reading on to the end also makes zlib check the gzip trailer (CRC and length).
  std::size_t trailing = 0;
  unsigned char rest[4096];
  while ((got = file.read(rest, sizeof(rest))) > 0) trailing += got;
  XGRAD_CHECK(trailing == 0, "read_idx: ", path, ": trailing data: ", trailing, " bytes after the ", *count,
              " that sizes ", shape_str(array.shape), " need");
  file.close();
  return array;
}

ImageDataset load_idx_dataset(const std::string& name, const std::string& images_path,
                              const std::string& labels_path, std::size_t classes) {
  XGRAD_CHECK(classes >= 1, name, ": classes must be >= 1, got ", classes);
  const IdxArray labels = read_idx(labels_path, 1);
  IdxArray images = read_idx(images_path, 3);
  XGRAD_CHECK(images.shape[0] == labels.shape[0], name, ": ", images_path, " holds ", images.shape[0],
              " images but ", labels_path, " holds ", labels.shape[0], " labels");
  std::vector<std::int64_t> values(labels.bytes.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    values[i] = labels.bytes[i];
    XGRAD_CHECK(labels.bytes[i] < classes, name, ": ", labels_path, ": label ", i, " is ", values[i], ", outside [0, ",
                classes, ")");
  }
  return ImageDataset(name, std::move(images.bytes), Shape{1, images.shape[1], images.shape[2]}, std::move(values),
                      classes);
}

}  // namespace xgrad::data
