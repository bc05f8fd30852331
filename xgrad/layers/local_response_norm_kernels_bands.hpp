// Internal to xgrad (not installed): the band walks of LocalResponseNorm's float forward with
// beta = 3/4 across channels (AlexNet's layers), for tensors large enough to be bound by memory
// (takes_band_walks: 2^22 values or more, planes of kBandMinInner positions or more, at least
// kBandMinItems work items).
//
// A column walk (local_response_norm_kernels_columns.hpp) visits all C channel planes for each
// 64 positions, so it reads short runs from C places at once; on cores whose prefetchers follow
// that poorly (measured on a Zen 4 EPYC, bench/README.md) the walk itself costs 1.5-2x a copy.
// A band walk instead runs along whole runs of a plane: kBandChannels = 4 outputs at a time,
// over all positions of a chunk (a plane, or a part of a plane of at most kBandMaxChunk
// positions), so it reads and writes four long runs at a time, and the sample's memory in
// order. Between bands, the last N-1 squares of each position wait in a ring of N-1 rows of the
// chunk's length (in L1 or L2), so each square is still formed once, and every window sum is
// the same sum in the same order as in RegisterWindow: the band and column walks give the same
// bits (and the same s^(-3/4), through fast_three_quarters).
//
// As in the column walks, u's bit patterns are tracked; a chunk with any u that is not finite
// is redone by the column walks (which then take NegPow's exact form per column where
// needed). The chunks are cut by the shape alone, so results stay bit-identical at any thread
// count.
#pragma once

#include <xgrad/layers/local_response_norm_kernels_columns.hpp>
#include <xgrad/layers/local_response_norm_kernels_common.hpp>

#include <algorithm>
#include <cstdint>

#include <xgrad/core/threading.hpp>

namespace xgrad {
namespace {

// Outputs per band: four long runs read and written at a time measured fastest on AlexNet's
// 55x55 planes (six and eight were as fast on 27x27, slower on 55x55).
constexpr int kBandChannels = 4;
// Planes of fewer positions go to the column walks, whose 64-position columns then already
// cover most of a plane.
constexpr Index kBandMinInner = 128;
// The band walks pay for their long runs with a load and a store more per output (the ring):
// they win where the forward is bound by memory and lose (by 5-50%, measured on a Zen 4 EPYC
// with 32 MiB of L3) where x and y stay in cache. So they take tensors of 2^22 values (16 MiB
// of float) or more, and only with work for threads to share.
constexpr Index kBandMinCount = Index{1} << 22;
// Chunk lengths: planes longer than kBandMaxChunk positions are cut into equal chunks (the ring
// of N-1 rows then stays within 112 KiB). Fewer than kBandMinItems items (samples x chunks)
// go to the column walks, whose blocks of 512 positions share out better.
constexpr Index kBandMaxChunk = 4096;
constexpr Index kBandMinItems = 8;

struct BandLayout {
  Index chunks;       // per plane
  Index chunk;        // positions per chunk (a whole number of vectors, but the last)
  Index ring_stride;  // floats between ring rows
};

inline BandLayout band_layout(Index inner) {
  constexpr Index kL = kLanes<float>;
  const Index chunks = ceil_div(inner, kBandMaxChunk);
  const Index chunk = round_up(ceil_div(inner, chunks), kL);
  // Ring rows 1088 bytes apart modulo 4 KiB (rows r and r + m then differ by at least 256
  // bytes in their low 12 address bits, for m up to 7), so that a load from one row never
  // waits on a store to another row at the same position (4 KiB aliasing).
  constexpr Index kPage = 1024, kOffset = 272;  // floats
  const Index ring_stride = round_up(chunk + (kPage - kOffset), kPage) - (kPage - kOffset);
  return {ceil_div(inner, chunk), chunk, ring_stride};
}

// Whether a float forward with beta = 3/4 across channels takes the band walks.
inline bool takes_band_walks(Index samples, Index channels, Index inner) {
  return inner >= kBandMinInner && samples * channels * inner >= kBandMinCount &&
         samples * band_layout(inner).chunks >= kBandMinItems;
}

// One band: outputs c0 .. c0 + kBandChannels - 1 over positions [0, len) of a chunk (x, y at
// its first position in channel 0). squares[a] is x^2 of channel c0 - N/2 + a; the first N-1
// come from the ring, which then takes the last N-1 for the next band. Last: the band reaches
// past the last channel (channels beyond are zero, outputs beyond are not written).
template <int N, bool Last>
XGRAD_FLATTEN void forward_band(const float* x, float* y, Index channels, Index stride, Index len,
                                Index c0, float* ring, Index ring_stride,
                                const FastThreeQuarters& fast, Batch<std::uint32_t>& highest) {
  using B = Batch<float>;
  constexpr Index kL = kLanes<float>;
  constexpr int kG = kBandChannels;
  constexpr int kHi = (N - 1) / 2;  // the window of c is [c - N/2, c + kHi]
  constexpr int kR = N - 1;         // ring rows
  const B scale(fast.u_scale), k(fast.u_k), zero(0.0f), seven_thirds(7.0f / 3.0f);
  auto walk = [&](Index i, auto full) {
    constexpr bool kFull = decltype(full)::value;
    const Index count = kFull ? kL : len - i;
    Reg<float> squares[kG + kR];
    Reg<float> inputs[kG + kHi];  // x of channels c0 .. c0 + kHi + kG - 1
    // All loads first: a load after a store in the same position of another plane would wait
    // on it when the planes' distance is a multiple of 4 KiB (4 KiB aliasing).
    for_each_vector<kR>([&](auto r) { squares[r] = B::load_aligned(ring + r * ring_stride + i); });
    for_each_vector<kHi>([&](auto j) {
      if (!Last || c0 + j < channels) inputs[j] = load_column<kFull>(x + (c0 + j) * stride + i, count);
    });
    for_each_vector<kG>([&](auto j) {
      const Index e = c0 + kHi + j;
      if (!Last || e < channels) {
        const B xv = load_column<kFull>(x + e * stride + i, count);
        // The next band's plane, at the same position.
        __builtin_prefetch(x + (e + kG) * stride + i);
        inputs[kHi + j] = xv;
        squares[kR + j] = xv * xv;
      } else {
        squares[kR + j] = zero;
      }
    });
    for_each_vector<kR>([&](auto r) { B(squares[kG + r]).store_aligned(ring + r * ring_stride + i); });
    for_each_vector<kG>([&](auto j) {
      const Index c = c0 + j;
      if (Last && c >= channels) return;
      // RegisterWindow's sum: pairs from the window's start, then the odd one.
      B sum = B(squares[j]);
      if constexpr (N > 1) sum += B(squares[j + 1]);
      for_each_vector<(N - 2) / 2>([&](auto m) {
        sum += B(squares[j + 2 * m + 2]) + B(squares[j + 2 * m + 3]);
      });
      if constexpr (N > 1 && N % 2 == 1) sum += B(squares[j + N - 1]);
      const B out = fast_three_quarters(sum, B(inputs[j]), scale, k, seven_thirds, highest);
      store_column<kFull>(out, y + c * stride + i, count);
      __builtin_prefetch(y + (c + kG) * stride + i, 1);
    });
  };
  Index i = 0;
  for (; i + kL <= len; i += kL) walk(i, std::true_type());
  if (i < len) walk(i, std::false_type());
}

// One chunk, positions [0, len) of a sample's planes: the ring set to the squares of channels
// -N/2 .. kHi - 1 (zero outside [0, C)), then the bands. False if any u was not finite.
template <int N>
bool forward_chunk_bands(const float* x, float* y, Index channels, Index stride, Index len,
                         float* ring, Index ring_stride, const FastThreeQuarters& fast) {
  using B = Batch<float>;
  using U = Batch<std::uint32_t>;
  constexpr Index kL = kLanes<float>;
  constexpr int kLo = N / 2, kHi = (N - 1) / 2;
  for (int r = 0; r < N - 1; ++r) {
    const Index c = r - kLo;
    float* row = ring + r * ring_stride;
    for (Index i = 0; i < len; i += kL) {
      B square(0.0f);
      if (c >= 0 && c < channels) {
        const B xv = load_part(x + c * stride + i, std::min(kL, len - i));
        square = xv * xv;
      }
      square.store_aligned(row + i);
    }
  }
  U highest(std::uint32_t(0));
  Index c0 = 0;
  for (; c0 + kBandChannels + kHi <= channels; c0 += kBandChannels) {
    forward_band<N, false>(x, y, channels, stride, len, c0, ring, ring_stride, fast, highest);
  }
  for (; c0 < channels; c0 += kBandChannels) {
    forward_band<N, true>(x, y, channels, stride, len, c0, ring, ring_stride, fast, highest);
  }
  return fast_three_quarters_held(highest);
}

// The driver: items (sample, chunk), cut by the shape alone; each thread writes only its
// items' outputs, with a ring of its own.
template <int N>
void forward_bands(const float* x, float* y, Index samples, Index channels, Index inner,
                   const Coefficients<float>& co,
                   const NegPow<float, BetaKind::ThreeQuarters>& pow) {
  const BandLayout layout = band_layout(inner);
  const Index items = samples * layout.chunks;
  const FastThreeQuarters fast = fast_three_quarters_of(co, pow.k_is_normal);
  ParallelErrors errors;
#pragma omp parallel
  {
    AlignedVector<float> ring;
    errors.run([&] { ring.resize(static_cast<std::size_t>(std::max(N - 1, 1) * layout.ring_stride)); });
#pragma omp for schedule(static)
    for (Index item = 0; item < items; ++item) {
      if (errors.failed()) continue;
      const Index sample_offset = (item / layout.chunks) * channels * inner;
      const Index begin = (item % layout.chunks) * layout.chunk;
      const Index len = std::min(layout.chunk, inner - begin);
      const float* xi = x + sample_offset + begin;
      float* yi = y + sample_offset + begin;
      const bool ok =
          fast.usable && forward_chunk_bands<N>(xi, yi, channels, inner, len, ring.data(), layout.ring_stride, fast);
      if (!ok) {
        forward_block_columns<float, BetaKind::ThreeQuarters, N>(x + sample_offset, y + sample_offset, begin,
                                                                 begin + len, channels, inner, co, pow, fast);
      }
    }
  }
  errors.rethrow();
}

}  // namespace
}  // namespace xgrad
