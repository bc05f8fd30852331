#include <xgrad/core/npy.hpp>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <limits>
#include <new>
#include <sstream>
#include <string_view>

#include <xgrad/core/error.hpp>
#include <xgrad/core/regular_file.hpp>

namespace xgrad {

template <> const char* npy_dtype<float>() { return "<f4"; }
template <> const char* npy_dtype<double>() { return "<f8"; }
template <> const char* npy_dtype<std::int64_t>() { return "<i8"; }
template <> const char* npy_dtype<std::int32_t>() { return "<i4"; }

namespace {

constexpr char kMagic[] = "\x93NUMPY";
// Larger headers are refused before they are read (numpy's own reader stops at 10000 bytes).
constexpr std::size_t kMaxHeaderLength = std::size_t(1) << 20;
// numpy 2 allows 64 dimensions (numpy 1: 32).
constexpr std::size_t kMaxDimensions = 64;

// The bytes of a .npy file: a RegularFile, or a buffer in memory (MemoryFile, for the fuzzers).
class MemoryFile {
 public:
  MemoryFile(const void* bytes, std::size_t size) : bytes_(static_cast<const char*>(bytes)), size_(size) {}
  std::uint64_t size() const { return size_; }
  std::size_t read_at(std::uint64_t offset, void* dst, std::size_t n) const {
    if (offset >= size_) return 0;
    const std::size_t count = std::min<std::size_t>(n, size_ - static_cast<std::size_t>(offset));
    if (count > 0) std::memcpy(dst, bytes_ + offset, count);
    return count;
  }

 private:
  const char* bytes_;
  std::size_t size_;
};

// A character of a header as a message shows it: 'x', or its code when it is not printable.
std::string shown(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) return cat("'", c, "'");
  std::ostringstream out;
  out << "byte 0x" << std::hex << std::setw(2) << std::setfill('0') << int(u);
  return out.str();
}

// The header dict, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }, parsed by
// the grammar numpy writes (either quote, any spaces, an optional trailing comma).
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const char* who, const std::string& path) : text_(text), who_(who), path_(path) {}

  NpyHeader parse() {
    skip_space();
    if (peek() != '{') fail(cat("the header is not a dict: it starts with ", at_end() ? "nothing" : shown(peek())));
    ++pos_;
    bool have_descr = false, have_fortran = false, have_shape = false;
    NpyHeader header;
    for (;;) {
      skip_space();
      if (peek() == '}') break;
      const std::string key = quoted("a key of the dict");
      skip_space();
      expect(':', cat("after the key '", key, "'"));
      skip_space();
      if (key == "descr") {
        if (have_descr) fail("'descr' appears twice");
        have_descr = true;
        header.dtype = quoted("the value of 'descr'");
        if (header.dtype.empty()) fail("'descr' is empty");
      } else if (key == "fortran_order") {
        if (have_fortran) fail("'fortran_order' appears twice");
        have_fortran = true;
        if (boolean("fortran_order")) fail("'fortran_order' is True: Fortran-ordered arrays are not supported");
      } else if (key == "shape") {
        if (have_shape) fail("'shape' appears twice");
        have_shape = true;
        header.shape = shape();
      } else {
        fail(cat("unknown field '", key, "' (a .npy header holds 'descr', 'fortran_order' and 'shape')"));
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != '}') {
        fail(cat("expected ',' or '}' after the value of '", key, "', found ", at_end() ? "the end" : shown(peek())));
      }
    }
    ++pos_;  // '}'
    skip_space();
    if (!at_end()) fail(cat("trailing garbage after the dict: ", shown(peek()), " at byte ", pos_));
    if (!have_descr) fail("the 'descr' field is missing");
    if (!have_fortran) fail("the 'fortran_order' field is missing");
    if (!have_shape) fail("the 'shape' field is missing");
    return header;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw Error(cat(who_, ": ", path_, ": header: ", what)); }
  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }
  void skip_space() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) ++pos_;
  }
  void expect(char c, const std::string& where) {
    if (at_end() || peek() != c) {
      fail(cat("expected '", c, "' ", where, ", found ", at_end() ? "the end" : shown(peek())));
    }
    ++pos_;
  }

  // A string in single or double quotes, of printable characters.
  std::string quoted(const std::string& what) {
    const char quote = peek();
    if (at_end() || (quote != '\'' && quote != '"')) {
      fail(cat(what, " is not a quoted string: it starts with ", at_end() ? "nothing" : shown(quote)));
    }
    const std::size_t start = ++pos_;
    while (!at_end() && peek() != quote) {
      const auto u = static_cast<unsigned char>(peek());
      if (u < 0x20 || u >= 0x7f || peek() == '\\') fail(cat(what, " holds ", shown(peek()), ", not a plain character"));
      ++pos_;
    }
    if (at_end()) fail(cat(what, " has no closing quote"));
    return std::string(text_.substr(start, pos_++ - start));
  }

  bool boolean(const char* key) {
    for (const std::string_view word : {"True", "False"}) {
      if (text_.substr(pos_, word.size()) == word) {
        const std::size_t end = pos_ + word.size();
        const char next = end < text_.size() ? text_[end] : '\0';
        if (!std::isalnum(static_cast<unsigned char>(next)) && next != '_') {
          pos_ = end;
          return word == "True";
        }
      }
    }
    fail(cat("'", key, "' must be True or False"));
  }

  // A tuple of non-negative integers: (), (3,), (2, 3), (2, 3,).
  Shape shape() {
    expect('(', "to open the tuple of 'shape'");
    Shape shape;
    skip_space();
    if (peek() == ')') {
      ++pos_;
      return shape;
    }
    for (;;) {
      if (shape.size() == kMaxDimensions) fail(cat("'shape' has more than ", kMaxDimensions, " dimensions"));
      shape.push_back(dimension(shape.size()));
      skip_space();
      if (peek() == ')') {
        if (shape.size() == 1) {
          fail(cat("'shape' (", shape[0], ") is not a tuple: a one-element tuple is written (", shape[0], ",)"));
        }
        break;
      }
      expect(',', cat("after dimension ", shape.size() - 1, " of 'shape'"));
      skip_space();
      if (peek() == ')') break;
    }
    ++pos_;  // ')'
    if (!checked_numel(shape)) fail(cat("'shape' ", shape_str(shape), ": the number of elements overflows size_t"));
    return shape;
  }

  std::size_t dimension(std::size_t index) {
    const std::size_t start = pos_;
    while (!at_end() && std::isdigit(static_cast<unsigned char>(peek()))) ++pos_;
    const std::string_view digits = text_.substr(start, pos_ - start);
    if (digits.empty()) {
      fail(cat("dimension ", index, " of 'shape' is not a non-negative integer: it starts with ",
               at_end() ? "nothing" : shown(peek())));
    }
    if (digits.size() > 1 && digits[0] == '0') fail(cat("dimension ", index, " of 'shape' has a leading zero: ", digits));
    std::size_t value = 0;
    for (const char c : digits) {
      const std::size_t d = static_cast<std::size_t>(c - '0');
      if (value > (std::numeric_limits<std::size_t>::max() - d) / 10) {
        fail(cat("dimension ", index, " of 'shape' (", digits.substr(0, 40), digits.size() > 40 ? "..." : "",
                 ") does not fit in size_t"));
      }
      value = value * 10 + d;
    }
    return value;
  }

  std::string_view text_;
  const char* who_;
  const std::string& path_;
  std::size_t pos_ = 0;
};

struct ParsedHeader {
  NpyHeader header;
  std::uint64_t data_offset;  // where the data starts
};

// The preamble (magic, version, header length) and the header dict of `file`.
template <class File>
ParsedHeader read_header(const File& file, const char* who, const std::string& path) {
  const std::uint64_t file_size = file.size();
  unsigned char preamble[12];
  const std::size_t got = file.read_at(0, preamble, sizeof preamble);
  XGRAD_CHECK(got >= 6 && std::memcmp(preamble, kMagic, 6) == 0, who, ": ", path,
              ": not a .npy file (bad magic: it does not start with \\x93NUMPY)");
  XGRAD_CHECK(got >= 8, who, ": ", path, ": truncated header: the file ends in the version");
  const int major = preamble[6], minor = preamble[7];
  XGRAD_CHECK(major >= 1 && major <= 3 && minor == 0, who, ": ", path, ": unsupported .npy version ", major, ".", minor,
              " (1.0, 2.0 and 3.0 are read)");
  const std::size_t length_bytes = major == 1 ? 2 : 4;
  const std::uint64_t prefix = 8 + length_bytes;
  XGRAD_CHECK(got >= prefix, who, ": ", path, ": truncated header: the file ends in the header length");
  std::uint64_t header_length = preamble[8] | (std::uint64_t(preamble[9]) << 8);
  if (length_bytes == 4) header_length |= (std::uint64_t(preamble[10]) << 16) | (std::uint64_t(preamble[11]) << 24);
  XGRAD_CHECK(header_length <= file_size - prefix, who, ": ", path, ": truncated header: the header length is ",
              header_length, " bytes but the file has ", file_size - prefix, " after the ", prefix, "-byte preamble");
  XGRAD_CHECK(header_length <= kMaxHeaderLength, who, ": ", path, ": the header length is ", header_length,
              " bytes, more than the limit of ", kMaxHeaderLength);
  std::string text(static_cast<std::size_t>(header_length), '\0');
  XGRAD_CHECK(file.read_at(prefix, text.data(), text.size()) == text.size(), who, ": ", path,
              ": truncated header: the file shrank while it was read");
  return {HeaderParser(text, who, path).parse(), prefix + header_length};
}

template <class T, class File>
xt::xarray<T> read_array(const File& file, const std::string& path) {
  const char* who = "load_npy";
  const ParsedHeader parsed = read_header(file, who, path);
  const NpyHeader& header = parsed.header;
  XGRAD_CHECK(header.dtype == npy_dtype<T>(), who, ": ", path, ": dtype is '", header.dtype, "', expected '",
              npy_dtype<T>(), "'");
  const std::size_t count = *checked_numel(header.shape);  // the parser checked the product
  XGRAD_CHECK(count <= std::numeric_limits<std::size_t>::max() / sizeof(T), who, ": ", path, ": shape ",
              shape_str(header.shape), ": the data size overflows size_t");
  const std::uint64_t bytes = std::uint64_t(count) * sizeof(T);
  const std::uint64_t available = file.size() - parsed.data_offset;
  XGRAD_CHECK(available >= bytes, who, ": ", path, ": truncated data: shape ", shape_str(header.shape), " needs ",
              bytes, " data bytes, the file has ", available);
  XGRAD_CHECK(available == bytes, who, ": ", path, ": trailing data: ", available - bytes,
              " unexpected bytes after the data of shape ", shape_str(header.shape));
  xt::xarray<T> array;
  try {
    array = xt::xarray<T>::from_shape(header.shape);
  } catch (const std::bad_alloc&) {
    throw Error(cat(who, ": ", path, ": cannot allocate ", bytes, " bytes for shape ", shape_str(header.shape)));
  }
  XGRAD_CHECK(file.read_at(parsed.data_offset, array.data(), static_cast<std::size_t>(bytes)) == bytes, who, ": ",
              path, ": truncated data: the file shrank while it was read");
  return array;
}

}  // namespace

NpyHeader read_npy_header(const std::string& path) {
  const detail::RegularFile file(path, "read_npy_header");
  return read_header(file, "read_npy_header", path).header;
}

template <class T>
xt::xarray<T> load_npy(const std::string& path) {
  const detail::RegularFile file(path, "load_npy");
  return read_array<T>(file, path);
}

namespace detail {

template <class T>
xt::xarray<T> parse_npy(const void* bytes, std::size_t size, const std::string& path) {
  return read_array<T>(MemoryFile(bytes, size), path);
}

NpyHeader parse_npy_header(const void* bytes, std::size_t size, const std::string& path) {
  return read_header(MemoryFile(bytes, size), "read_npy_header", path).header;
}

}  // namespace detail

template <class T>
void save_npy(const std::string& path, const xt::xarray<T>& array) {
  std::string shape = "(";
  for (std::size_t i = 0; i < array.dimension(); ++i) {
    shape += std::to_string(array.shape()[i]);
    shape += (array.dimension() == 1) ? "," : (i + 1 < array.dimension() ? ", " : "");
  }
  shape += ")";
  std::string header = std::string("{'descr': '") + npy_dtype<T>() + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Pad with spaces so magic + version + length + header + '\n' is a multiple of 64.
  const std::size_t preamble = 10;
  const std::size_t total = ((preamble + header.size() + 1 + 63) / 64) * 64;
  header.append(total - preamble - header.size() - 1, ' ');
  header += '\n';
  XGRAD_CHECK(header.size() <= 0xffff, "save_npy: ", path, ": the header of shape ", shape_str(array.shape()),
              " is longer than a version 1.0 header can be");
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  XGRAD_CHECK(out.good(), "save_npy: cannot open ", path, " for writing");
  out.write(kMagic, 6);
  const unsigned char version[2] = {1, 0};
  out.write(reinterpret_cast<const char*>(version), 2);
  const unsigned char len[2] = {static_cast<unsigned char>(header.size() & 0xff),
                                static_cast<unsigned char>(header.size() >> 8)};
  out.write(reinterpret_cast<const char*>(len), 2);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(reinterpret_cast<const char*>(array.data()), static_cast<std::streamsize>(array.size() * sizeof(T)));
  out.flush();
  XGRAD_CHECK(out.good(), "save_npy: writing ", path, " failed");
}

template xt::xarray<float> load_npy<float>(const std::string&);
template xt::xarray<double> load_npy<double>(const std::string&);
template xt::xarray<std::int64_t> load_npy<std::int64_t>(const std::string&);
template xt::xarray<std::int32_t> load_npy<std::int32_t>(const std::string&);
template xt::xarray<float> detail::parse_npy<float>(const void*, std::size_t, const std::string&);
template xt::xarray<double> detail::parse_npy<double>(const void*, std::size_t, const std::string&);
template xt::xarray<std::int64_t> detail::parse_npy<std::int64_t>(const void*, std::size_t, const std::string&);
template xt::xarray<std::int32_t> detail::parse_npy<std::int32_t>(const void*, std::size_t, const std::string&);
template void save_npy<float>(const std::string&, const xt::xarray<float>&);
template void save_npy<double>(const std::string&, const xt::xarray<double>&);
template void save_npy<std::int64_t>(const std::string&, const xt::xarray<std::int64_t>&);
template void save_npy<std::int32_t>(const std::string&, const xt::xarray<std::int32_t>&);

}  // namespace xgrad
