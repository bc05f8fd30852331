#pragma once
// IDX files, the format of MNIST and Fashion-MNIST: two zero bytes, a type byte (0x08 =
// unsigned byte, the only type read here), a byte with the number of dimensions d, d
// big-endian uint32 sizes, then the values in row-major order. A name ending in .gz is read
// as gzip (zlib), any other name as a plain file.
//
// requires: the path names a regular file (a directory, FIFO or device is refused without
//           being opened for reading, so a FIFO never blocks).
// ensures:  the header is checked before any data is read; the data is decompressed straight
//           into the returned buffer; every defect is an xgrad::Error naming the file and the
//           field: magic, type byte, number of dimensions, size, data (truncated or trailing
//           bytes), gzip (corrupt or truncated).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <xgrad/core/tensor.hpp>
#include <xgrad/data/dataset.hpp>

namespace xgrad::data {

// The largest number of values an IDX file may hold (2^31): far above MNIST's 47 million,
// far below what would exhaust memory on a typo'd or hostile header.
inline constexpr std::size_t kMaxIdxElements = std::size_t(1) << 31;

struct IdxArray {
  Shape shape;                      // the sizes of the header, each >= 1
  std::vector<std::uint8_t> bytes;  // numel(shape) values, row-major
};

// Reads an IDX file of unsigned bytes. dims > 0 requires exactly that many dimensions
// (3 for images (N, H, W), 1 for labels (N)); 0 accepts any number >= 1.
IdxArray read_idx(const std::string& path, std::size_t dims = 0);

// A data set from an images file (N, H, W) and a labels file (N), both IDX of unsigned bytes:
// images (1, H, W) kept as uint8, labels in [0, classes). Throws xgrad::Error naming both
// files when the counts differ, and the labels file and the position of the first label
// outside [0, classes).
ImageDataset load_idx_dataset(const std::string& name, const std::string& images_path,
                              const std::string& labels_path, std::size_t classes);

}  // namespace xgrad::data
