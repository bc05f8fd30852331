// libFuzzer target: read_idx on any bytes, three ways: the input as a plain file; the input as
// a file named .gz (zlib's inflate on corrupt streams); the input gzip-compressed by the
// target (the IDX parser behind gzip).
// Properties: an array or an xgrad::Error; the plain and the compressed reading agree (both
// fail, or both give the same shape and bytes), although the plain one checks the sizes
// against the file's size first and the gzip one grows its buffer as data arrives.
#include <zlib.h>

#include <cstddef>
#include <cstdint>

#include <xgrad/data/idx.hpp>

#include "fuzz/fuzz_util.hpp"

using xgrad::data::IdxArray;
using xgrad::data::read_idx;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& dir = xgrad::fuzz::scratch_dir();
  const std::string plain = (dir / "input.idx").string();
  const std::string as_gz = (dir / "input.idx.gz").string();
  const std::string compressed = (dir / "compressed.idx.gz").string();
  xgrad::fuzz::write_file(plain, data, size);
  xgrad::fuzz::write_file(as_gz, data, size);
  gzFile gz = gzopen(compressed.c_str(), "wb1");
  if (gz == nullptr || (size > 0 && gzwrite(gz, data, static_cast<unsigned>(size)) != static_cast<int>(size)) ||
      gzclose(gz) != Z_OK) {
    xgrad::fuzz::violated("cannot write the compressed input");
  }

  IdxArray from_plain, from_compressed;
  const bool plain_ok = xgrad::fuzz::succeeds([&] { from_plain = read_idx(plain); });
  xgrad::fuzz::succeeds([&] { read_idx(as_gz); });
  const bool compressed_ok = xgrad::fuzz::succeeds([&] { from_compressed = read_idx(compressed); });
  if (plain_ok != compressed_ok) xgrad::fuzz::violated("plain and gzip readings disagree on success");
  if (plain_ok && (from_plain.shape != from_compressed.shape || from_plain.bytes != from_compressed.bytes)) {
    xgrad::fuzz::violated("plain and gzip readings disagree on the array");
  }
  return 0;
}
