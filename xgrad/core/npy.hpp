#pragma once
// .npy reading and writing (NumPy format 1.0, 2.0 and 3.0; little-endian, C order), for checkpoints
// and test fixtures. Supported dtypes: float32 '<f4', float64 '<f8', int64 '<i8', int32 '<i4'.
//
// Reading is strict, for files that may be truncated, corrupt or hostile:
// requires: nothing of the file. A directory, FIFO or device is refused without blocking.
// ensures:  either the array or an xgrad::Error naming the function, the file and the field:
//           magic, version (1.0, 2.0, 3.0), header length (within the file), the header dict
//           (exactly the keys 'descr', 'fortran_order' and 'shape', quoted; descr a quoted
//           string; fortran_order True or False; shape a tuple of non-negative integers such as
//           (), (3,) or (2, 3), each and their product fitting in size_t; nothing but spaces
//           after the dict), dtype, and data (shorter or longer than the shape says). Nothing
//           is allocated for the data before its size has been checked against the file's.
#include <cstddef>
#include <cstdint>
#include <string>

#include <xtensor/xarray.hpp>

#include <xgrad/core/tensor.hpp>

namespace xgrad {

// Header of a .npy file: dtype descriptor (e.g. "<f4") and shape.
struct NpyHeader {
  std::string dtype;
  Shape shape;
};

// The header alone (errors say "read_npy_header").
NpyHeader read_npy_header(const std::string& path);

// Loads an array whose dtype must be exactly T's (float -> '<f4', double -> '<f8',
// std::int64_t -> '<i8', std::int32_t -> '<i4'); a different dtype, a truncated file or a
// malformed header throws.
template <class T>
xt::xarray<T> load_npy(const std::string& path);

// Writes the array (C order). The file is written in place; callers wanting atomicity
// write to a temporary path and rename.
template <class T>
void save_npy(const std::string& path, const xt::xarray<T>& array);

// The '<f4'-style descriptor of T.
template <class T>
const char* npy_dtype();
template <> const char* npy_dtype<float>();
template <> const char* npy_dtype<double>();
template <> const char* npy_dtype<std::int64_t>();
template <> const char* npy_dtype<std::int32_t>();

namespace detail {
// load_npy and read_npy_header of a whole file held in memory, `path` naming it in errors:
// the in-memory way in, for the fuzzers (fuzz/); the file path is the public one.
template <class T>
xt::xarray<T> parse_npy(const void* bytes, std::size_t size, const std::string& path);
NpyHeader parse_npy_header(const void* bytes, std::size_t size, const std::string& path);
}  // namespace detail

}  // namespace xgrad
