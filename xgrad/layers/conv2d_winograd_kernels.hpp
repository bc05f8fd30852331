#pragma once
// Winograd F(2x2, 3x3) for Conv2d's 3x3 layers at stride 1 with padding 1 (float): internal to
// xgrad_layers (not installed). conv2d.cpp chooses when these run (see winograd_ok there).
//
// Each output plane is cut into 2x2 tiles; tile t of plane (n, o) reads the 4x4 input patch
// that starts one row and one column above and left of it (zeros outside the image). With
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
//   A^T = [1 1 1 0; 0 1 -1 -1],
// the transforms V = B^T d B (input patch), U = G w G^T (weight) and the 16 products
//   M[xi] (Og, T) = U[xi] (Og, Cg) x V[xi] (Cg, T)   (one GEMM per xi = (i, j) of the 4x4)
// give the tile's outputs as A^T M A: 16 GEMMs of (Og, Cg, T) instead of one of (Og, 9 Cg, 4 T),
// 2.25x fewer multiply-adds (less the tiles' overhang on odd planes). FLOP are still counted as
// the direct convolution's.
//
// The weight gradient is the same bilinear map transposed: with D = A dY A^T (the output
// gradient's 2x2 tile, 4x4 after transform), dU[xi] (Og, Cg) = D[xi] (Og, T) x V[xi]^T (T, Cg)
// over all the batch's tiles, and dw = G^T dU G.
//
// Results differ from the direct sum in the last bits (the transforms add and subtract inputs
// before the products), and a non-finite input spreads to the whole 2x2 tile of every output
// plane it reaches (its transform mixes the 4x4 patch), where the direct sum spreads it to the
// outputs whose 3x3 window holds it. Each output element is computed by one GEMM call over the
// whole inner dimension, in pieces fixed by the shape, so results do not depend on the thread
// count.
#include <cstdint>

#include <xgrad/layers/conv2d.hpp>

namespace xgrad {
namespace detail {

// y = conv(x, w) + b (b may be null); with add, y += conv(x, w) (b unused). g: K 3, S 1, P 1.
// w is (O, Cg, 3, 3).
void winograd_forward(const float* x, const float* w, const float* b, float* y, const Conv2dGeometry& g, bool add);

// dx += (or, with overwrite, =) the input gradient: the forward of dy by w flipped in both
// axes with each group's (Og, Cg) transposed. t is that forward's geometry (conv2d.cpp's
// input_grad_geometry of the layer's: in and out channels, input and output sides swapped).
void winograd_input_grad(const float* dy, const float* w, float* dx, const Conv2dGeometry& t, bool overwrite);

// dw (O, Cg, 3, 3) += the weight gradient, from dy (N, O, OH, OW) and x (N, C, H, W).
void winograd_weight_grad(const float* dy, const float* x, float* dw, const Conv2dGeometry& g);

// The floats of the transformed inputs and products one pass over the batch may take (2^26 by
// default): a larger batch goes in passes of whole images, whose weight-gradient products add
// in pass order. Returns the previous value. For tests, which lower it to take several passes;
// not to be changed while a convolution runs.
std::int64_t set_winograd_pass_floats(std::int64_t floats);

}  // namespace detail
}  // namespace xgrad
