// libFuzzer target: the .npy reader on any bytes, through detail::parse_npy (load_npy of a
// file held in memory) for each supported dtype, and detail::parse_npy_header.
// Properties: an array or an xgrad::Error, never a crash, a sanitizer report or a huge
// allocation; a loaded array has the header's shape and dtype.
#include <cstddef>
#include <cstdint>

#include <xgrad/core/npy.hpp>

#include "fuzz/fuzz_util.hpp"

namespace {

template <class T>
void load_as(const std::uint8_t* data, std::size_t size, const xgrad::NpyHeader* header) {
  xt::xarray<T> array;
  if (!xgrad::fuzz::succeeds([&] { array = xgrad::detail::parse_npy<T>(data, size, "<input>"); })) return;
  if (header == nullptr) xgrad::fuzz::violated("parse_npy succeeded where parse_npy_header failed");
  if (header->dtype != xgrad::npy_dtype<T>()) xgrad::fuzz::violated("parse_npy returned another dtype");
  if (xgrad::Shape(array.shape().begin(), array.shape().end()) != header->shape) {
    xgrad::fuzz::violated("parse_npy returned another shape than the header's");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  xgrad::NpyHeader header;
  const bool have_header =
      xgrad::fuzz::succeeds([&] { header = xgrad::detail::parse_npy_header(data, size, "<input>"); });
  const xgrad::NpyHeader* h = have_header ? &header : nullptr;
  load_as<float>(data, size, h);
  load_as<double>(data, size, h);
  load_as<std::int64_t>(data, size, h);
  load_as<std::int32_t>(data, size, h);
  return 0;
}
