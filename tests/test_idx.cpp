// The IDX reader on small files written here (gzip and plain): exact round trips, and a clear
// error naming the file and the field for every way a file can be wrong; MNIST-format
// directories; and, when Debian's dataset-fashion-mnist is installed, the real data set.
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include <xgrad/xgrad.hpp>
#include "tests/test_util.hpp"

namespace fs = std::filesystem;
namespace tt = boost::test_tools;
using namespace xgrad;
using namespace xgrad::data;
using xgrad::test::mentions;
using xgrad::test::TempDir;

namespace {

using Bytes = std::vector<std::uint8_t>;

// An IDX file's bytes: magic, type byte, the sizes (big-endian), then data.
Bytes idx_bytes(const std::vector<std::uint32_t>& sizes, const Bytes& data, std::uint8_t type = 0x08) {
  Bytes out = {0, 0, type, static_cast<std::uint8_t>(sizes.size())};
  for (std::uint32_t s : sizes) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(s >> shift));
  }
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

void write_plain(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  BOOST_REQUIRE(out.good());
}

void write_gzip(const std::string& path, const Bytes& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  BOOST_REQUIRE(file != nullptr);
  BOOST_REQUIRE(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  BOOST_REQUIRE(gzclose(file) == Z_OK);
}

Bytes read_plain(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Writes gzip when the name ends in .gz, plain otherwise, as read_idx reads them.
void write_idx(const std::string& path, const Bytes& bytes) {
  if (path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0) {
    write_gzip(path, bytes);
  } else {
    write_plain(path, bytes);
  }
}

// n deterministic pixel values covering 0..255.
Bytes pixels(std::size_t n) {
  Bytes out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>((i * 37 + 11) % 256);
  return out;
}

const std::vector<std::string> kNames = {"data.gz", "data"};

}  // namespace

BOOST_AUTO_TEST_CASE(round_trip_of_pixels_and_labels_is_exact) {
  TempDir dir;
  const Bytes images = pixels(3 * 4 * 5);
  const Bytes labels = {0, 9, 3};
  for (const std::string suffix : {".gz", ""}) {
    const std::string images_path = dir("images" + suffix), labels_path = dir("labels" + suffix);
    write_idx(images_path, idx_bytes({3, 4, 5}, images));
    write_idx(labels_path, idx_bytes({3}, labels));

    const IdxArray array = read_idx(images_path);
    BOOST_TEST(array.shape == Shape({3, 4, 5}), tt::per_element());
    BOOST_TEST(array.bytes == images, tt::per_element());
    BOOST_TEST(read_idx(labels_path, 1).bytes == labels, tt::per_element());

    const ImageDataset data = load_idx_dataset("Tiny", images_path, labels_path, 10);
    BOOST_TEST(data.name() == "Tiny");
    BOOST_TEST(data.size() == 3u);
    BOOST_TEST(data.classes() == 10u);
    BOOST_TEST(data.image_shape() == Shape({1, 4, 5}), tt::per_element());
    BOOST_TEST(data.pixels() == images, tt::per_element());
    BOOST_TEST(data.labels() == std::vector<std::int64_t>({0, 9, 3}), tt::per_element());
    const Example example = data.get(1);
    BOOST_TEST(example.label == 9);
    BOOST_TEST(example.image.shape() == Shape({1, 4, 5}), tt::per_element());
    for (std::size_t i = 0; i < 20; ++i) {
      BOOST_TEST(example.image.data()[i] == static_cast<float>(images[20 + i]) / 255.0f, tt::tolerance(1e-6f));
    }
  }
}

BOOST_AUTO_TEST_CASE(any_number_of_dimensions_unless_one_is_asked_for) {
  TempDir dir;
  write_idx(dir("two.gz"), idx_bytes({2, 3}, pixels(6)));
  BOOST_TEST(read_idx(dir("two.gz")).shape == Shape({2, 3}), tt::per_element());
  BOOST_CHECK_EXCEPTION(read_idx(dir("two.gz"), 3), Error,
                        mentions({dir("two.gz"), "number of dimensions is 2, expected 3"}));
}

BOOST_AUTO_TEST_CASE(bad_header_fields_are_named) {
  TempDir dir;
  for (const std::string& name : kNames) {
    const std::string path = dir(name);
    Bytes bytes = idx_bytes({2, 2, 2}, pixels(8));
    bytes[1] = 0x03;
    write_idx(path, bytes);
    BOOST_CHECK_EXCEPTION(read_idx(path), Error, mentions({path, "bad magic", "0x00 0x03"}));

    write_idx(path, idx_bytes({2, 2, 2}, pixels(32), 0x0D));
    BOOST_CHECK_EXCEPTION(read_idx(path), Error, mentions({path, "type byte is 0x0d", "float32", "0x08"}));

    write_idx(path, idx_bytes({}, {}));
    BOOST_CHECK_EXCEPTION(read_idx(path), Error, mentions({path, "number of dimensions is 0"}));

    write_idx(path, idx_bytes({2, 0, 2}, {}));
    BOOST_CHECK_EXCEPTION(read_idx(path), Error, mentions({path, "size of dimension 1 is 0"}));

    write_idx(path, idx_bytes({0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}, {}));
    BOOST_CHECK_EXCEPTION(read_idx(path), Error, mentions({path, "sizes (4294967295, 4294967295, 4294967295)",
                                                           "overflows size_t"}));

    write_idx(path, idx_bytes({65536, 32768, 2}, {}));  // 2^32 values
    BOOST_CHECK_EXCEPTION(read_idx(path), Error,
                          mentions({path, "sizes (65536, 32768, 2)", "4294967296 values", "limit of 2147483648"}));

    write_idx(path, Bytes{0, 0, 8});
    BOOST_CHECK_EXCEPTION(read_idx(path), Error, mentions({path, "truncated header"}));

    write_idx(path, Bytes{0, 0, 8, 3, 0, 0, 0, 2, 0, 0});
    BOOST_CHECK_EXCEPTION(read_idx(path), Error, mentions({path, "truncated header", "sizes of 3 dimensions"}));
  }
}

BOOST_AUTO_TEST_CASE(data_shorter_or_longer_than_the_header_promises) {
  TempDir dir;
  for (const std::string& name : kNames) {
    const std::string path = dir(name);
    write_idx(path, idx_bytes({2, 3, 4}, pixels(23)));
    BOOST_CHECK_EXCEPTION(read_idx(path), Error, mentions({path, "truncated data", "(2, 3, 4)", "need 24 bytes",
                                                           "holds 23"}));
    write_idx(path, idx_bytes({2, 3, 4}, pixels(27)));
    BOOST_CHECK_EXCEPTION(read_idx(path), Error, mentions({path, "trailing data", "3 bytes after the 24"}));
  }
}

BOOST_AUTO_TEST_CASE(truncated_or_corrupt_gzip) {
  TempDir dir;
  const std::string path = dir("images.gz");
  write_gzip(path, idx_bytes({4, 16, 16}, pixels(4 * 16 * 16)));
  const Bytes good = read_plain(path);
  BOOST_REQUIRE(good.size() > 30u);
  BOOST_REQUIRE_NO_THROW(read_idx(path));

  // Cut in the middle of the compressed data, and cut in the trailer (all the data is there,
  // its CRC is not).
  for (const std::size_t keep : {good.size() / 2, good.size() - 4}) {
    write_plain(path, Bytes(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(keep)));
    BOOST_CHECK_EXCEPTION(read_idx(path), Error, mentions({path, "gzip", "truncated compressed data"}));
  }
  // A wrong CRC in the trailer, and an invalid first deflate block (after the 10-byte header).
  Bytes bad_crc = good;
  bad_crc[bad_crc.size() - 8] ^= 0xFF;
  write_plain(path, bad_crc);
  BOOST_CHECK_EXCEPTION(read_idx(path), Error, mentions({path, "gzip", "corrupt compressed data"}));
  Bytes bad_block = good;
  bad_block[10] = 0xFF;
  write_plain(path, bad_block);
  BOOST_CHECK_EXCEPTION(read_idx(path), Error, mentions({path, "gzip", "corrupt compressed data"}));

  // The name decides the format.
  write_plain(path, idx_bytes({1, 1, 1}, {7}));
  BOOST_CHECK_EXCEPTION(read_idx(path), Error, mentions({path, "gzip", "not gzip data"}));
  write_plain(path, {});
  BOOST_CHECK_EXCEPTION(read_idx(path), Error, mentions({path, "gzip", "not gzip data"}));
  write_plain(dir("images"), good);
  BOOST_CHECK_EXCEPTION(read_idx(dir("images")), Error, mentions({dir("images"), "gzip data", "does not end in .gz"}));
}

BOOST_AUTO_TEST_CASE(images_and_labels_must_agree) {
  TempDir dir;
  const std::string images = dir("images.gz"), labels = dir("labels.gz");
  write_gzip(images, idx_bytes({5, 2, 2}, pixels(20)));
  write_gzip(labels, idx_bytes({4}, {0, 1, 2, 3}));
  BOOST_CHECK_EXCEPTION(load_idx_dataset("Tiny", images, labels, 10), Error,
                        mentions({"Tiny", images, "holds 5 images", labels, "holds 4 labels"}));

  write_gzip(labels, idx_bytes({5}, {0, 1, 10, 3, 4}));
  BOOST_CHECK_EXCEPTION(load_idx_dataset("Tiny", images, labels, 10), Error,
                        mentions({"Tiny", labels, "label 2 is 10", "outside [0, 10)"}));

  write_gzip(labels, idx_bytes({5, 1}, pixels(5)));
  BOOST_CHECK_EXCEPTION(load_idx_dataset("Tiny", images, labels, 10), Error,
                        mentions({labels, "number of dimensions is 2, expected 1"}));
  write_gzip(labels, idx_bytes({5}, {0, 1, 2, 3, 4}));
  write_gzip(images, idx_bytes({5, 4}, pixels(20)));
  BOOST_CHECK_EXCEPTION(load_idx_dataset("Tiny", images, labels, 10), Error,
                        mentions({images, "number of dimensions is 2, expected 3"}));
}

BOOST_AUTO_TEST_CASE(only_regular_files_are_read) {
  TempDir dir;
  BOOST_CHECK_EXCEPTION(read_idx(dir("missing.gz")), Error, mentions({dir("missing.gz"), "does not exist"}));
  fs::create_directory(dir("folder.gz"));
  BOOST_CHECK_EXCEPTION(read_idx(dir("folder.gz")), Error,
                        mentions({dir("folder.gz"), "not a regular file", "a directory"}));
  BOOST_CHECK_EXCEPTION(read_idx("/dev/null"), Error, mentions({"/dev/null", "not a regular file", "device"}));

  // Opening a FIFO for reading blocks until a writer comes: read_idx must refuse it first.
  const std::string fifo = dir("fifo.gz");
  BOOST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  BOOST_CHECK_EXCEPTION(xgrad::test::call_without_blocking(fifo, [&] { read_idx(fifo); }), Error,
                        mentions({fifo, "not a regular file (it is a FIFO)"}));
}

BOOST_AUTO_TEST_CASE(mnist_format_directories) {
  TempDir dir;
  const Bytes images = pixels(2 * 28 * 28);
  write_gzip(dir("t10k-images-idx3-ubyte.gz"), idx_bytes({2, 28, 28}, images));
  write_gzip(dir("t10k-labels-idx1-ubyte.gz"), idx_bytes({2}, {7, 2}));
  const ImageDataset test = mnist(Split::Test, dir.root.string());
  BOOST_TEST(test.name() == "Mnist(test)");
  BOOST_TEST(test.size() == 2u);
  BOOST_TEST(test.image_shape() == Shape({1, 28, 28}), tt::per_element());
  BOOST_TEST(test.pixels() == images, tt::per_element());
  BOOST_TEST(test.labels() == std::vector<std::int64_t>({7, 2}), tt::per_element());
  const ImageDataset fashion = fashion_mnist(Split::Test, dir.root.string());
  BOOST_TEST(fashion.name() == "FashionMnist(test)");

  // The training files are missing; then the images are not 28x28.
  BOOST_CHECK_EXCEPTION(fashion_mnist(Split::Train, dir.root.string()), Error,
                        mentions({"FashionMnist(train)", dir("train-images-idx3-ubyte.gz"), "does not exist",
                                  "apt-get install dataset-fashion-mnist"}));
  BOOST_CHECK_EXCEPTION(mnist(Split::Train, dir.root.string()), Error,
                        mentions({"Mnist(train)", dir("train-images-idx3-ubyte.gz"), "does not exist"}));
  write_gzip(dir("t10k-images-idx3-ubyte.gz"), idx_bytes({2, 4, 5}, pixels(40)));
  BOOST_CHECK_EXCEPTION(mnist(Split::Test, dir.root.string()), Error,
                        mentions({"Mnist(test)", "(1, 4, 5)", "expected (1, 28, 28)"}));

  BOOST_CHECK_EXCEPTION(fashion_mnist(Split::Test, dir("nowhere")), Error,
                        mentions({dir("nowhere"), "does not exist", "apt-get install dataset-fashion-mnist"}));
  BOOST_CHECK_EXCEPTION(fashion_mnist(Split::Test, dir("t10k-labels-idx1-ubyte.gz")), Error,
                        mentions({dir("t10k-labels-idx1-ubyte.gz"), "is not a directory"}));
}

BOOST_AUTO_TEST_CASE(fashion_mnist_class_names) {
  const auto& names = fashion_mnist_classes();
  BOOST_TEST(names.size() == 10u);
  BOOST_TEST(names.front() == "T-shirt/top");
  BOOST_TEST(names[6] == "Shirt");
  BOOST_TEST(names.back() == "Ankle boot");
}

// The Debian data set (CI installs dataset-fashion-mnist): the counts of both splits.
BOOST_AUTO_TEST_CASE(fashion_mnist_from_debian) {
  if (!fs::exists(kFashionMnistDir)) {
    BOOST_TEST_MESSAGE(kFashionMnistDir << " does not exist (apt-get install dataset-fashion-mnist): "
                                        << "checking only the error");
    BOOST_CHECK_EXCEPTION(fashion_mnist(Split::Train), Error,
                          mentions({kFashionMnistDir, "apt-get install dataset-fashion-mnist"}));
    return;
  }
  struct Expected {
    Split split;
    std::size_t count;
    const char* name;
  };
  for (const Expected& expected : {Expected{Split::Train, 60000, "FashionMnist(train)"},
                                   Expected{Split::Test, 10000, "FashionMnist(test)"}}) {
    const ImageDataset data = fashion_mnist(expected.split);
    BOOST_TEST(data.name() == expected.name);
    BOOST_TEST(data.size() == expected.count);
    BOOST_TEST(data.classes() == 10u);
    BOOST_TEST(data.image_shape() == Shape({1, 28, 28}), tt::per_element());
    BOOST_TEST(data.pixels().size() == expected.count * 28 * 28);
    std::vector<std::size_t> per_class(10, 0);
    for (std::int64_t label : data.labels()) ++per_class[static_cast<std::size_t>(label)];
    BOOST_TEST(per_class == std::vector<std::size_t>(10, expected.count / 10), tt::per_element());
  }
}
