#include <xgrad/core/npy.hpp>

#include <cstring>
#include <fstream>
#include <sstream>

#include <xgrad/core/error.hpp>

namespace xgrad {

template <> const char* npy_dtype<float>() { return "<f4"; }
template <> const char* npy_dtype<double>() { return "<f8"; }
template <> const char* npy_dtype<std::int64_t>() { return "<i8"; }
template <> const char* npy_dtype<std::int32_t>() { return "<i4"; }

namespace {

constexpr char kMagic[] = "\x93NUMPY";

// Extracts the value text of 'key' from the header dict, e.g. 'descr': '<f4' -> <f4.
std::string dict_value(const std::string& header, const std::string& key, const std::string& path) {
  const std::string quoted = "'" + key + "'";
  auto pos = header.find(quoted);
  XGRAD_CHECK(pos != std::string::npos, "load_npy: ", path, ": header has no '", key, "' entry");
  pos = header.find(':', pos + quoted.size());
  XGRAD_CHECK(pos != std::string::npos, "load_npy: ", path, ": malformed header");
  ++pos;
  while (pos < header.size() && header[pos] == ' ') ++pos;
  XGRAD_CHECK(pos < header.size(), "load_npy: ", path, ": malformed header");
  if (header[pos] == '\'') {
    auto end = header.find('\'', pos + 1);
    XGRAD_CHECK(end != std::string::npos, "load_npy: ", path, ": malformed header");
    return header.substr(pos + 1, end - pos - 1);
  }
  if (header[pos] == '(') {
    auto end = header.find(')', pos);
    XGRAD_CHECK(end != std::string::npos, "load_npy: ", path, ": malformed header");
    return header.substr(pos + 1, end - pos - 1);
  }
  auto end = header.find_first_of(",}", pos);
  XGRAD_CHECK(end != std::string::npos, "load_npy: ", path, ": malformed header");
  return header.substr(pos, end - pos);
}

Shape parse_shape(const std::string& text, const std::string& path) {
  Shape shape;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    auto first = item.find_first_not_of(' ');
    if (first == std::string::npos) continue;
    item = item.substr(first, item.find_last_not_of(' ') - first + 1);
    XGRAD_CHECK(!item.empty() && item.find_first_not_of("0123456789") == std::string::npos, "load_npy: ", path,
          ": malformed shape '(", text, ")'");
    shape.push_back(static_cast<std::size_t>(std::stoull(item)));
  }
  return shape;
}

// Reads the header and leaves the stream at the start of the data.
NpyHeader read_header(std::ifstream& in, const std::string& path) {
  char magic[6];
  in.read(magic, 6);
  XGRAD_CHECK(in.gcount() == 6 && std::memcmp(magic, kMagic, 6) == 0, "load_npy: ", path, ": not a .npy file (bad magic)");
  unsigned char version[2];
  in.read(reinterpret_cast<char*>(version), 2);
  XGRAD_CHECK(in.gcount() == 2, "load_npy: ", path, ": truncated header");
  std::size_t header_len = 0;
  if (version[0] == 1) {
    unsigned char len[2];
    in.read(reinterpret_cast<char*>(len), 2);
    XGRAD_CHECK(in.gcount() == 2, "load_npy: ", path, ": truncated header");
    header_len = len[0] | (len[1] << 8);
  } else if (version[0] == 2 || version[0] == 3) {
    unsigned char len[4];
    in.read(reinterpret_cast<char*>(len), 4);
    XGRAD_CHECK(in.gcount() == 4, "load_npy: ", path, ": truncated header");
    header_len = len[0] | (len[1] << 8) | (len[2] << 16) | (static_cast<std::size_t>(len[3]) << 24);
  } else {
    throw Error(cat("load_npy: ", path, ": unsupported .npy version ", int(version[0])));
  }
  XGRAD_CHECK(header_len < (1u << 20), "load_npy: ", path, ": header too long");
  std::string header(header_len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_len));
  XGRAD_CHECK(static_cast<std::size_t>(in.gcount()) == header_len, "load_npy: ", path, ": truncated header");
  NpyHeader result;
  result.dtype = dict_value(header, "descr", path);
  const std::string fortran = dict_value(header, "fortran_order", path);
  XGRAD_CHECK(fortran == "False", "load_npy: ", path, ": Fortran-ordered arrays are not supported");
  result.shape = parse_shape(dict_value(header, "shape", path), path);
  return result;
}

std::ifstream open_for_read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  XGRAD_CHECK(in.good(), "load_npy: cannot open ", path);
  return in;
}

}  // namespace

NpyHeader read_npy_header(const std::string& path) {
  auto in = open_for_read(path);
  return read_header(in, path);
}

template <class T>
xt::xarray<T> load_npy(const std::string& path) {
  auto in = open_for_read(path);
  const NpyHeader header = read_header(in, path);
  XGRAD_CHECK(header.dtype == npy_dtype<T>(), "load_npy: ", path, ": dtype is '", header.dtype, "', expected '",
        npy_dtype<T>(), "'");
  const auto data_start = in.tellg();
  in.seekg(0, std::ios::end);
  const auto file_size = in.tellg();
  in.seekg(data_start);
  const std::size_t count = numel(header.shape);
  const std::size_t bytes = count * sizeof(T);
  const std::size_t available = static_cast<std::size_t>(file_size - data_start);
  XGRAD_CHECK(available >= bytes, "load_npy: ", path, ": truncated: shape ", shape_str(header.shape), " needs ", bytes,
        " data bytes, file has ", available);
  XGRAD_CHECK(available == bytes, "load_npy: ", path, ": ", available - bytes, " unexpected trailing bytes after the data of shape ",
        shape_str(header.shape));
  auto array = xt::xarray<T>::from_shape(header.shape);
  in.read(reinterpret_cast<char*>(array.data()), static_cast<std::streamsize>(bytes));
  XGRAD_CHECK(static_cast<std::size_t>(in.gcount()) == bytes, "load_npy: ", path, ": read failed");
  return array;
}

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
template void save_npy<float>(const std::string&, const xt::xarray<float>&);
template void save_npy<double>(const std::string&, const xt::xarray<double>&);
template void save_npy<std::int64_t>(const std::string&, const xt::xarray<std::int64_t>&);
template void save_npy<std::int32_t>(const std::string&, const xt::xarray<std::int32_t>&);

}  // namespace xgrad
