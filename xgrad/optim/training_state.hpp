#pragma once
// Training-state checkpoints: everything a run needs to go on as if it had never stopped, so
// that a resumed run ends with the weights of an uninterrupted one, bit for bit:
//   the model's parameters and buffers, and its layers' extra state (Dropout's mask counter);
//   the optimiser's momentum buffers;
//   the progress: epoch, step, the epoch's data order and every named generator's state.
// (The learning-rate schedule is a function of the step: set_steps(progress.step) restores it.)
//
// Layout: root/step-<step, 12 digits>/ holds model/ (a checkpoint, see checkpoint.hpp),
// optimizer/momentum.<parameter>.npy and progress/*.npy. Each is written atomically and
// durably (every file and directory fsynced, then renamed into place, then the root fsynced);
// after a save only the newest `keep` remain. A process killed at any moment leaves the
// previous checkpoints intact; an interrupted save leaves only a "*.tmp-<pid>" directory,
// which latest() ignores and the next save removes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <xgrad/core/rng.hpp>
#include <xgrad/layers/checkpoint.hpp>
#include <xgrad/layers/layer.hpp>
#include <xgrad/optim/sgd.hpp>

namespace xgrad::optim {

struct TrainingProgress {
  std::uint64_t epoch = 0;         // the epoch in progress, from 0
  std::uint64_t step = 0;          // optimiser steps taken in all
  std::vector<std::size_t> order;  // the epoch's data order
  std::vector<std::pair<std::string, RngState>> rngs;  // named generators, e.g. {"shuffle", ...}
  // Named float tensors of the caller's own state, e.g. the weights of the best epoch so far
  // (saved as progress/tensor.<name>.npy; a name is used as a file name).
  std::vector<std::pair<std::string, Tensor>> tensors;
};

class TrainingCheckpoints {
 public:
  // Throws xgrad::Error for an empty root or keep == 0.
  explicit TrainingCheckpoints(std::string root, std::size_t keep = 2);

  // Writes root/step-<progress.step>/ and removes the older ones beyond `keep`; returns the
  // directory written. after_each_file as for save_checkpoint (tests interrupt saves with it).
  std::string save(Layer& model, const SGD& optimizer, const TrainingProgress& progress,
                   const CheckpointFileHook& after_each_file = nullptr) const;
  // The newest complete checkpoint directory under root, or "" when there is none.
  std::string latest() const;
  // Restores model and optimizer from `dir` and returns its progress. Everything is read and
  // validated first (names, shapes, dtypes, the model's structure): on failure nothing changed.
  TrainingProgress load(const std::string& dir, Layer& model, SGD& optimizer) const;

  const std::string& root() const { return root_; }

 private:
  std::string root_;
  std::size_t keep_;
};

}  // namespace xgrad::optim
