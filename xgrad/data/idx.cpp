#include <xgrad/data/idx.hpp>

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
#include <xgrad/core/regular_file.hpp>

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

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// An IDX file open for reading through zlib, which decompresses gzip and reads any other
// file as it is. Every failure throws xgrad::Error prefixed with "read_idx: <path>: ".
class IdxFile {
 public:
  explicit IdxFile(const std::string& path) : path_(path) {
    detail::RegularFile regular(path, "read_idx");  // refuses a FIFO without blocking
    size_ = regular.size();
    const int fd = regular.release();
    file_.reset(gzdopen(fd, "rb"));
    if (!file_) {
      ::close(fd);
      throw Error(cat("read_idx: ", path, ": cannot open: out of memory"));
    }
    gzbuffer(file_.get(), 1u << 17);
    // gzdirect looks at the first bytes: 1 for a plain file, 0 for gzip.
    plain_ = gzdirect(file_.get()) == 1;
    check_stream();
    if (ends_with(path, ".gz")) {
      XGRAD_CHECK(!plain_, "read_idx: ", path, ": gzip: the name ends in .gz but the file is not gzip data");
    } else {
      XGRAD_CHECK(plain_, "read_idx: ", path, ": the file is gzip data but its name does not end in .gz");
    }
  }

  // True for a plain file (not gzip); its size in bytes.
  bool plain() const { return plain_; }
  std::uint64_t size() const { return size_; }

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
  std::uint64_t size_ = 0;
  bool plain_ = true;
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

  const std::size_t header_bytes = 4 + 4 * rank;
  if (file.plain()) {
    // The sizes are checked against the file before anything is allocated.
    const std::uint64_t available = file.size() - std::min<std::uint64_t>(file.size(), header_bytes);
    XGRAD_CHECK(available >= *count, "read_idx: ", path, ": truncated data: sizes ", shape_str(array.shape), " need ",
                *count, " bytes, the file holds ", available);
    XGRAD_CHECK(available == *count, "read_idx: ", path, ": trailing data: ", available - *count, " bytes after the ",
                *count, " that sizes ", shape_str(array.shape), " need");
  }
  // gzip data has no size to check first: the buffer grows as data arrives (at most twice
  // what the file really holds), so sizes claiming more than that cost no memory.
  std::size_t filled = 0;
  while (filled < *count) {
    const std::size_t capacity =
        file.plain() ? *count : std::min(*count, std::max(2 * filled, std::size_t(1) << 20));
    try {
      array.bytes.resize(capacity);
    } catch (const std::bad_alloc&) {
      throw Error(cat("read_idx: ", path, ": cannot allocate ", capacity, " bytes for sizes ", shape_str(array.shape)));
    }
    got = file.read(array.bytes.data() + filled, capacity - filled);
    filled += got;
    if (filled < capacity) break;
  }
  XGRAD_CHECK(filled == *count, "read_idx: ", path, ": truncated data: sizes ", shape_str(array.shape), " need ", *count,
              " bytes, the file holds ", filled);
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
