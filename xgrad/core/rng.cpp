#include <xgrad/core/rng.hpp>

#include <cmath>
#include <numeric>
#include <utility>

#include <xgrad/core/error.hpp>

namespace xgrad {

std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

namespace {
std::uint64_t splitmix64(std::uint64_t& state) { return mix64(state += 0x9E3779B97F4A7C15ull); }
std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

Rng::Rng(std::uint64_t seed) {
  std::uint64_t state = seed;
  for (auto& s : s_) s = splitmix64(state);
}

std::uint64_t Rng::next_u64() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform(double lo, double hi) {
  // 53 random bits -> [0, 1)
  const double u = static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
  return lo + (hi - lo) * u;
}

double Rng::normal(double mean, double stddev) {
  if (has_spare_) {
    has_spare_ = false;
    return mean + stddev * spare_;
  }
  double u1 = 0.0;
  while (u1 <= 0.0) u1 = uniform();
  const double u2 = uniform();
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double theta = 2.0 * M_PI * u2;
  spare_ = r * std::sin(theta);
  has_spare_ = true;
  return mean + stddev * r * std::cos(theta);
}

std::uint64_t Rng::below(std::uint64_t n) {
  XGRAD_CHECK(n > 0, "Rng::below: n must be > 0");
  // Rejection sampling removes modulo bias.
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  std::uint64_t v;
  do v = next_u64();
  while (v >= limit);
  return v % n;
}

void Rng::shuffle(std::vector<std::size_t>& values) {
  for (std::size_t i = values.size(); i > 1; --i) std::swap(values[i - 1], values[below(i)]);
}

RngState Rng::state() const { return {{s_[0], s_[1], s_[2], s_[3]}, has_spare_, spare_}; }

void Rng::set_state(const RngState& state) {
  XGRAD_CHECK(state.s[0] != 0 || state.s[1] != 0 || state.s[2] != 0 || state.s[3] != 0,
              "Rng::set_state: an all-zero state is not one xoshiro256** can be in");
  for (int i = 0; i < 4; ++i) s_[i] = state.s[i];
  has_spare_ = state.has_spare;
  spare_ = state.spare;
}

void Rng::fill_uniform(Tensor& t, double lo, double hi) {
  for (auto& v : t) v = static_cast<float>(uniform(lo, hi));
}

void Rng::fill_normal(Tensor& t, double mean, double stddev) {
  for (auto& v : t) v = static_cast<float>(normal(mean, stddev));
}

std::vector<std::size_t> epoch_permutation(std::size_t n, std::uint64_t seed, std::uint64_t epoch) {
  // One generator per (seed, epoch): the odd multiplier spreads consecutive epochs apart
  // before Rng's own splitmix64 seeding mixes the bits.
  Rng rng(seed ^ (epoch * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull));
  std::vector<std::size_t> perm(n);
  std::iota(perm.begin(), perm.end(), std::size_t{0});
  rng.shuffle(perm);
  return perm;
}

Rng& global_rng() {
  static Rng rng(0);
  return rng;
}

void manual_seed(std::uint64_t seed) { global_rng() = Rng(seed); }

std::size_t fan_in(const Tensor& weight) {
  XGRAD_CHECK(weight.dimension() >= 2, "fan_in: weight must have rank >= 2, got ", shape_str(weight.shape()));
  return weight.size() / weight.shape()[0];
}

std::size_t fan_out(const Tensor& weight) {
  XGRAD_CHECK(weight.dimension() >= 2, "fan_out: weight must have rank >= 2, got ", shape_str(weight.shape()));
  return weight.size() / weight.shape()[1];
}

void kaiming_normal(Tensor& weight, Rng& rng) {
  rng.fill_normal(weight, 0.0, std::sqrt(2.0 / static_cast<double>(fan_in(weight))));
}

void xavier_uniform(Tensor& weight, Rng& rng) {
  const double bound = std::sqrt(6.0 / static_cast<double>(fan_in(weight) + fan_out(weight)));
  rng.fill_uniform(weight, -bound, bound);
}

}  // namespace xgrad
