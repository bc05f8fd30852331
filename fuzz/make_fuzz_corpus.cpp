// Writes the seed corpus of the fuzz targets: a handful of tiny valid and invalid inputs each,
// in <dir>/npy, <dir>/checkpoint and <dir>/idx (the repository's copy is fuzz/corpus, made by
//   build-fuzz/fuzz/make_fuzz_corpus fuzz/corpus).
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <xgrad/xgrad.hpp>

namespace fs = std::filesystem;
using Bytes = std::string;

namespace {

Bytes read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const fs::path& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out.good()) {
    std::fprintf(stderr, "make_fuzz_corpus: cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

// The bytes save_npy writes for the array.
template <class T>
Bytes npy(const xt::xarray<T>& array, const fs::path& scratch) {
  const fs::path file = scratch / "a.npy";
  xgrad::save_npy<T>(file.string(), array);
  return read_bytes(file);
}

Bytes gzip(const Bytes& bytes, const fs::path& scratch) {
  const fs::path file = scratch / "a.gz";
  gzFile gz = gzopen(file.c_str(), "wb9");
  if (gz == nullptr || gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size())) != static_cast<int>(bytes.size()) ||
      gzclose(gz) != Z_OK) {
    std::fprintf(stderr, "make_fuzz_corpus: gzip failed\n");
    std::exit(1);
  }
  return read_bytes(file);
}

// An IDX file of unsigned bytes: 0 0 0x08 rank, big-endian sizes, values.
Bytes idx(const std::vector<std::uint32_t>& sizes, const Bytes& values) {
  Bytes out{'\0', '\0', '\x08', static_cast<char>(sizes.size())};
  for (const std::uint32_t s : sizes) {
    for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((s >> shift) & 0xff);
  }
  return out + values;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_fuzz_corpus DIR\n");
    return 2;
  }
  const fs::path root = argv[1];
  const fs::path scratch = fs::temp_directory_path() / ("make-fuzz-corpus-" + std::to_string(::getpid()));
  fs::create_directories(scratch);
  for (const char* target : {"npy", "checkpoint", "idx"}) {
    fs::remove_all(root / target);
    fs::create_directories(root / target);
  }

  // .npy: each dtype, ranks 0 to 3, an empty array, versions 2.0 and 3.0, and defects.
  const Bytes f4 = npy<float>(xt::xarray<float>({{1, 2, 3}, {4, 5, 6}}), scratch);
  write_bytes(root / "npy/f4-2x3.npy", f4);
  write_bytes(root / "npy/f8-scalar.npy", npy<double>(xt::xarray<double>(2.5), scratch));
  write_bytes(root / "npy/i8-3.npy", npy<std::int64_t>(xt::xarray<std::int64_t>({7, -1, 3}), scratch));
  write_bytes(root / "npy/i4-1x2x2.npy", npy<std::int32_t>(xt::xarray<std::int32_t>({{{1, 2}, {3, 4}}}), scratch));
  write_bytes(root / "npy/f4-empty-0x4.npy", npy<float>(xt::xarray<float>::from_shape({0, 4}), scratch));
  Bytes v2 = f4.substr(0, 6) + Bytes("\x02\x00", 2) + f4.substr(8, 2) + Bytes(2, '\0') + f4.substr(10);
  write_bytes(root / "npy/f4-2x3-version2.npy", v2);
  v2[6] = '\x03';
  write_bytes(root / "npy/f4-2x3-version3.npy", v2);
  write_bytes(root / "npy/bad-truncated.npy", f4.substr(0, f4.size() - 3));
  Bytes fortran = f4;
  fortran.replace(fortran.find("False"), 5, "True ");
  write_bytes(root / "npy/bad-fortran.npy", fortran);
  Bytes tuple = f4;
  tuple.replace(tuple.find("(2, 3)"), 6, "(6)   ");
  write_bytes(root / "npy/bad-shape-not-a-tuple.npy", tuple);

  // Checkpoints of the fuzz model (0.weight (2, 3), 0.bias (2), 2.weight (1, 2), 2.bias (1)):
  // the four files joined by the separator of fuzz_checkpoint.cpp.
  const Bytes sep = "\n==> next file <==\n";
  const Bytes w0 = npy<float>(xt::xarray<float>({{1, 2, 3}, {4, 5, 6}}), scratch);
  const Bytes b0 = npy<float>(xt::xarray<float>({0.5f, -0.5f}), scratch);
  const Bytes w2 = npy<float>(xt::xarray<float>({{1, -1}}), scratch);
  const Bytes b2 = npy<float>(xt::xarray<float>({0.25f}), scratch);
  write_bytes(root / "checkpoint/valid", w0 + sep + b0 + sep + w2 + sep + b2);
  write_bytes(root / "checkpoint/bad-missing-file", w0 + sep + b0 + sep + w2);
  write_bytes(root / "checkpoint/bad-extra-file", w0 + sep + b0 + sep + w2 + sep + b2 + sep + b2);
  write_bytes(root / "checkpoint/bad-wrong-shape", b0 + sep + w0 + sep + w2 + sep + b2);
  write_bytes(root / "checkpoint/bad-float64",
              npy<double>(xt::xarray<double>({{1, 2, 3}, {4, 5, 6}}), scratch) + sep + b0 + sep + w2 + sep + b2);

  // IDX: labels and images, plain and gzip, and defects.
  const Bytes labels = idx({5}, Bytes("\x00\x01\x02\x03\x09", 5));
  const Bytes images = idx({2, 3, 3}, Bytes("\x00\x10\x20\x30\x40\x50\x60\x70\x80\x90\xa0\xb0\xc0\xd0\xe0\xf0\xff\x01", 18));
  write_bytes(root / "idx/labels-5", labels);
  write_bytes(root / "idx/images-2x3x3", images);
  write_bytes(root / "idx/labels-5.gz", gzip(labels, scratch));
  write_bytes(root / "idx/images-2x3x3.gz", gzip(images, scratch));
  write_bytes(root / "idx/bad-truncated", images.substr(0, images.size() - 4));
  write_bytes(root / "idx/bad-trailing", labels + "xy");
  write_bytes(root / "idx/bad-type-float", idx({1}, Bytes(4, '\0')).replace(2, 1, "\x0d"));
  const Bytes gz = gzip(images, scratch);
  write_bytes(root / "idx/bad-truncated.gz", gz.substr(0, gz.size() - 6));

  fs::remove_all(scratch);
  std::printf("make_fuzz_corpus: wrote %s/{npy,checkpoint,idx}\n", root.c_str());
  return 0;
}
