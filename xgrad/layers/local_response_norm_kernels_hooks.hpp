// Internal to xgrad (not installed): test hooks of the LocalResponseNorm kernels.
#pragma once

namespace xgrad {
namespace detail {

// Which walks the float forward with beta = 3/4 across channels (window <= 8) takes:
// Automatic (the default) chooses by shape (takes_band_walks in
// local_response_norm_kernels_bands.hpp); Bands and Columns force one for every shape. For
// tests, which compare the two; not to be changed while a forward runs. Returns the previous
// setting.
enum class LrnWalks { Automatic, Bands, Columns };
LrnWalks set_lrn_walks(LrnWalks walks);
LrnWalks lrn_walks();

}  // namespace detail
}  // namespace xgrad
