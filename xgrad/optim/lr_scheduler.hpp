#pragma once
// Learning-rate schedules: each drives one SGD optimiser's rate through set_lr. Their peak
// (base) rate is the optimiser's rate when the schedule is made. Rates are computed in double;
// one that decays below the smallest normal float is held there (the same as 0 for the
// weights), and one that would grow past float range is an xgrad::Error naming the schedule.
#include <cstddef>

#include <xgrad/optim/sgd.hpp>

namespace xgrad::optim {

// Step schedule: lr = base_lr * gamma^(epoch / step_size).
class StepLR {
 public:
  StepLR(SGD& optimizer, int step_size, double gamma = 0.1);
  // Call once per epoch, after the epoch's training.
  void step();
  int epoch() const { return epoch_; }
  // Resumes after `epoch` epochs (sets the optimiser's rate as step() would have).
  void set_epoch(int epoch);

 private:
  SGD& optimizer_;
  int step_size_;
  double gamma_, base_lr_;
  int epoch_ = 0;
};

// Linear warm-up, then cosine decay, over total_steps optimiser steps. With T = total_steps,
// W = max(1, warmup_fraction * T), floor = final_fraction * base_lr and s = t + 1 for step t
// (counted from 0), the rate of step t is
//   base_lr * s / W                                                          for s <= W
//   floor + (base_lr - floor) * (1 + cos(pi * min(1, (s - W) / max(1, T - W)))) / 2   after
// so it climbs to base_lr at the end of the warm-up and reaches the floor on the last step,
// where it stays if training goes on. The warm-up lets a high rate start safely; the decay
// settles the weights at the end, worth several points of accuracy on a short budget.
// requires: total_steps >= 1, warmup_fraction in [0, 1], final_fraction in (0, 1] (else xgrad::Error)
// ensures:  the optimiser runs at step 0's rate from construction on
class WarmupCosineLR {
 public:
  WarmupCosineLR(SGD& optimizer, std::size_t total_steps, double warmup_fraction = 0.05,
                 double final_fraction = 0.01);
  // Call once per optimiser step, after SGD::step: sets the next step's rate.
  void step();
  // The rate of the current step (the optimiser's rate).
  double lr() const { return optimizer_.lr(); }
  std::size_t steps() const { return step_; }
  // Resumes after `steps` steps (sets the optimiser's rate as step() would have).
  void set_steps(std::size_t steps);

 private:
  double rate(std::size_t t) const;

  SGD& optimizer_;
  std::size_t total_steps_;
  double warmup_steps_, base_lr_, final_lr_;
  std::size_t step_ = 0;  // steps taken
};

}  // namespace xgrad::optim
