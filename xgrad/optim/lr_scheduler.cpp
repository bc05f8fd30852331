#include <xgrad/optim/lr_scheduler.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

#include <xgrad/core/error.hpp>

namespace xgrad::optim {

namespace {
// Hands a schedule's rate (computed in double) to the optimiser. A rate that decays below the
// smallest normal float is held there (the same as 0 for the weights); one that grows past
// float range is an error naming the schedule and the step.
void apply_rate(SGD& optimizer, double lr, const char* who, const char* unit, std::size_t at) {
  constexpr double kFloatMin = std::numeric_limits<float>::min();
  constexpr double kFloatMax = std::numeric_limits<float>::max();
  XGRAD_CHECK(lr <= kFloatMax, who, ": the learning rate at ", unit, " ", at, " would be ", lr,
              ", beyond float range (at most ", kFloatMax, ")");
  optimizer.set_lr(std::max(lr, kFloatMin));
}
}  // namespace

StepLR::StepLR(SGD& optimizer, int step_size, double gamma)
    : optimizer_(optimizer), step_size_(step_size), gamma_(gamma), base_lr_(optimizer.lr()) {
  XGRAD_CHECK(step_size >= 1, "StepLR: step_size must be >= 1, got ", step_size);
  XGRAD_CHECK(std::isfinite(gamma) && gamma > 0.0, "StepLR: gamma must be a finite value > 0, got ", gamma);
}

void StepLR::step() { set_epoch(epoch_ + 1); }

void StepLR::set_epoch(int epoch) {
  XGRAD_CHECK(epoch >= 0, "StepLR: epoch must be >= 0, got ", epoch);
  epoch_ = epoch;
  apply_rate(optimizer_, base_lr_ * std::pow(gamma_, epoch_ / step_size_), "StepLR", "epoch",
             static_cast<std::size_t>(epoch_));
}

WarmupCosineLR::WarmupCosineLR(SGD& optimizer, std::size_t total_steps, double warmup_fraction,
                               double final_fraction)
    : optimizer_(optimizer),
      total_steps_(total_steps),
      warmup_steps_(std::max(1.0, warmup_fraction * static_cast<double>(total_steps))),
      base_lr_(optimizer.lr()),
      final_lr_(final_fraction * base_lr_) {
  XGRAD_CHECK(total_steps >= 1, "WarmupCosineLR: total_steps must be >= 1, got ", total_steps);
  XGRAD_CHECK(warmup_fraction >= 0.0 && warmup_fraction <= 1.0,
              "WarmupCosineLR: warmup_fraction must be in [0, 1], got ", warmup_fraction);
  // Not 0: the last step's rate is the floor, and SGD takes only rates > 0.
  XGRAD_CHECK(final_fraction > 0.0 && final_fraction <= 1.0,
              "WarmupCosineLR: final_fraction must be in (0, 1], got ", final_fraction);
  apply_rate(optimizer_, rate(0), "WarmupCosineLR", "step", 0);
}

void WarmupCosineLR::step() { set_steps(step_ + 1); }

void WarmupCosineLR::set_steps(std::size_t steps) {
  step_ = steps;
  apply_rate(optimizer_, rate(step_), "WarmupCosineLR", "step", step_);
}

double WarmupCosineLR::rate(std::size_t t) const {
  const double s = static_cast<double>(t) + 1.0;
  if (s <= warmup_steps_) return base_lr_ * s / warmup_steps_;
  const double progress = (s - warmup_steps_) / std::max(1.0, static_cast<double>(total_steps_) - warmup_steps_);
  return final_lr_ + (base_lr_ - final_lr_) * 0.5 * (1.0 + std::cos(3.14159265358979323846 * std::min(1.0, progress)));
}

}  // namespace xgrad::optim
