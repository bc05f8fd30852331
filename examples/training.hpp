#pragma once
// alexnet_example's training loop, for every data set: SGD with momentum and weight decay under
// the warm-up + cosine schedule (per step), on this process's share of each epoch (all of it in
// one process, its DistributedSampler shard under --distributed), batches built by a
// data::DataLoader (with the data set's augmentation, in background workers when asked), one
// evaluation after every epoch, and training-state checkpoints to resume from.
//
// Model selection (keep_best): the per-epoch evaluation is of a validation split, and at the end
// the model gets back the weights and buffers of the epoch with the best accuracy (the first, on
// a tie).
//
// With ema_decay > 0 the run also keeps an exponential moving average of the weights and buffers,
// updated after every step with the decay min(ema_decay, (1 + t) / (10 + t)) at step t, and
// evaluates it after every epoch too. Model selection then chooses among both (the weights
// first, on a tie); without keep_best the run ends with the average.
//
// Resuming restores everything a run depends on (weights, momentum, schedule, the epoch's order,
// the generators, the best weights so far), so a resumed run ends bit-identical to an
// uninterrupted one; the per-epoch figures it reports (loss, accuracies, seconds) are kept in
// float.
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <xgrad/autograd/variable.hpp>
#include <xgrad/core/rng.hpp>
#include <xgrad/data/dataset.hpp>
#include <xgrad/data/transforms.hpp>
#include <xgrad/distributed/sampler.hpp>
#include <xgrad/layers/cross_entropy_loss.hpp>
#include <xgrad/layers/layer.hpp>
#include <xgrad/optim/lr_scheduler.hpp>
#include <xgrad/optim/sgd.hpp>
#include <xgrad/optim/training_state.hpp>

#include "examples/report.hpp"

namespace xgrad::examples {

// What a run trains on and evaluates after every epoch. The data sets must outlive the Training.
struct TrainingData {
  const data::Dataset* train_set = nullptr;
  std::vector<std::size_t> train;                   // indices into train_set
  std::shared_ptr<const data::Transform> augment;   // per training example; null: none
  std::size_t workers = 0;                          // DataLoader workers for the training batches
  const data::Dataset* eval_set = nullptr;          // evaluated after every epoch
  std::vector<std::size_t> eval;                    // indices into eval_set
  std::shared_ptr<const data::Transform> eval_transform;  // null: none
  std::size_t eval_batch = 64;
  bool keep_best = false;  // eval is a validation split: keep the best epoch's weights
};

// Training-state checkpoints: save into dir every `every` steps (0: after every epoch), or
// resume from the newest one in resume (and go on saving there).
struct CheckpointSettings {
  std::string dir, resume;
  long long every = 0;
};

class Training {
 public:
  // Throws xgrad::Error when resuming fails (no checkpoint, or one of a run with other settings).
  Training(const RunSettings& settings, const CheckpointSettings& checkpoints, const World& world, Layer& model,
           TrainingData data, std::function<void()> average_gradients);

  // Trains every epoch into history; false (after saying why) when training diverged.
  bool run(std::vector<EpochRecord>& history);

  double seconds() const { return seconds_; }          // training steps only, all epochs
  std::size_t images() const { return images_done_; }  // trained on, over all ranks
  int best_epoch() const { return best_epoch_; }       // with keep_best; 0 before any epoch
  double best_accuracy() const { return best_accuracy_; }
  bool best_is_average() const { return best_is_average_; }  // the moving average was chosen

 private:
  struct EpochSums {
    double loss = 0.0, seconds = 0.0;
    double correct = 0.0, seen = 0.0;
  };
  bool train_epoch(int epoch, EpochSums& sums);
  bool train_step(int epoch, std::size_t step, const Tensor& images, const std::vector<std::int64_t>& labels,
                  EpochSums& sums);
  void end_epoch(int epoch, const EpochSums& sums, std::vector<EpochRecord>& history);
  void save(int epoch, const EpochSums& sums);
  void resume(const std::string& root, std::vector<EpochRecord>& history);
  bool diverged(int epoch, std::size_t step, double loss) const;
  void show_progress(int epoch, std::size_t step, const EpochSums& sums);
  // The model's parameters, then its buffers (BatchNorm2d's running estimates): the state that
  // model selection keeps of the best epoch.
  std::vector<Tensor*> model_state() const;
  // Under --distributed: every buffer replaced by its mean over the ranks, which each update from
  // their own shard (a no-op in one process). Before every evaluation and every save. The running
  // estimates are linear in the batch statistics, so where the saves fall changes their mean only
  // by rounding; the weights do not depend on them.
  void average_buffers();
  // The moving average after a step (the first step's state starts it).
  void update_average();
  // The accuracy on the evaluation split, of the weights or of the moving average.
  double evaluate();
  double evaluate_average();
  void swap_average();

  const RunSettings& s_;
  CheckpointSettings ck_;
  const World& world_;
  Layer& model_;
  TrainingData data_;
  std::function<void()> average_gradients_;  // over the ranks after every backward; a no-op in one process
  std::size_t local_batch_;                  // images per step on this process
  distributed::DistributedSampler sampler_;  // this process's positions in data_.train of each epoch
  std::size_t steps_per_epoch_, total_steps_;
  optim::SGD opt_;
  optim::WarmupCosineLR schedule_;
  CrossEntropyLoss loss_fn_;
  std::vector<std::size_t> order_;  // (sampler_.size()): the epoch's order, positions in data_.train
  Rng shuffle_;
  bool tty_;
  double seconds_ = 0.0;
  std::size_t steps_done_ = 0, images_done_ = 0;
  std::unique_ptr<optim::TrainingCheckpoints> checkpoints_;  // with a checkpoint dir or resume
  int first_epoch_ = 1;                                      // where this process starts: a resumed
  std::size_t first_step_ = 0, resumed_steps_ = 0;           // run, after the saved step
  EpochSums resumed_sums_;                                   // of the epoch a resumed run goes on with
  bool resumed_at_epoch_end_ = false;
  const std::vector<EpochRecord>* history_ = nullptr;  // run()'s, for the checkpoints
  std::vector<Tensor> average_;       // with ema_decay: the moving average of model_state()
  std::vector<Tensor> best_weights_;  // the best epoch's model_state()
  int best_epoch_ = 0;
  double best_accuracy_ = -1.0;
  bool best_is_average_ = false;
  std::chrono::steady_clock::time_point last_print_;
};

}  // namespace xgrad::examples
