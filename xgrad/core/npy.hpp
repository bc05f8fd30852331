#pragma once
// .npy reading and writing (NumPy format 1.0/2.0, little-endian, C order), for checkpoints
// and test fixtures. Supported dtypes: float32 '<f4', float64 '<f8', int64 '<i8', int32 '<i4'.
// Every failure throws xgrad::Error naming the file and what is wrong with it.
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

}  // namespace xgrad
