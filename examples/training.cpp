#include "examples/training.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <optional>

#include <xgrad/core/error.hpp>
#include <xgrad/data/data_loader.hpp>

namespace xgrad::examples {

namespace {

using Clock = std::chrono::steady_clock;

// The training order's seed and the augmentation's, other streams of --seed than the data's.
std::uint64_t order_seed(const RunSettings& s) { return static_cast<std::uint64_t>(s.seed) * 2 + 3000017; }
std::uint64_t augment_seed(const RunSettings& s) { return static_cast<std::uint64_t>(s.seed) * 2 + 5000011; }

// The sampler's size is checked here so that its own error does not need to be understood.
std::size_t train_count(const TrainingData& d, const World& world) {
  XGRAD_CHECK(d.train_set != nullptr && d.eval_set != nullptr, "Training: no data set");
  XGRAD_CHECK(d.train.size() >= static_cast<std::size_t>(world.ranks), "Training: ", d.train.size(),
              " training images for ", world.ranks, " ranks");
  return d.train.size();
}

}  // namespace

Training::Training(const RunSettings& settings, const CheckpointSettings& checkpoints, const World& world,
                   Layer& model, TrainingData data, std::function<void()> average_gradients)
    : s_(settings), ck_(checkpoints), world_(world), model_(model), data_(std::move(data)),
      average_gradients_(std::move(average_gradients)),
      local_batch_(static_cast<std::size_t>(settings.batch_size / world.ranks)),
      sampler_(train_count(data_, world), world.rank, world.ranks, order_seed(settings)),
      steps_per_epoch_((sampler_.size() + local_batch_ - 1) / local_batch_),
      total_steps_(steps_per_epoch_ * static_cast<std::size_t>(settings.epochs)),
      opt_(model.parameters(), optim::SGDOptions(settings.lr).momentum(settings.momentum)
                                   .weight_decay(settings.weight_decay).nesterov(settings.nesterov)),
      schedule_(opt_, std::max<std::size_t>(total_steps_, 1), settings.warmup,  // --epochs 0 takes no step
                settings.final_lr),
      loss_fn_(CrossEntropyLossOptions().label_smoothing(settings.label_smoothing)),
      order_(sampler_.size()), shuffle_(order_seed(settings)),
      tty_(world.leader() && ::isatty(::fileno(stdout)) != 0) {
  std::iota(order_.begin(), order_.end(), std::size_t{0});
  const std::string dir = ck_.dir.empty() ? ck_.resume : ck_.dir;
  if (!dir.empty()) checkpoints_ = std::make_unique<optim::TrainingCheckpoints>(dir);
}

bool Training::run(std::vector<EpochRecord>& history) {
  history_ = &history;
  if (!ck_.resume.empty()) resume(ck_.resume, history);
  for (int epoch = first_epoch_; epoch <= s_.epochs; ++epoch) {
    const bool resumed = epoch == first_epoch_ && !ck_.resume.empty();
    EpochSums sums = resumed ? resumed_sums_ : EpochSums{};
    if (!(resumed && resumed_at_epoch_end_) && !train_epoch(epoch, sums)) return false;
    end_epoch(epoch, sums, history);
  }
  if (data_.keep_best && best_epoch_ > 0) {
    const std::vector<Tensor*> state = model_state();
    for (std::size_t i = 0; i < state.size(); ++i) std::copy(best_weights_[i].begin(), best_weights_[i].end(), state[i]->begin());
  } else if (!data_.keep_best && !average_.empty()) {
    swap_average();  // the run's model is the moving average
  }
  return true;
}

std::vector<Tensor*> Training::model_state() const {
  std::vector<Tensor*> state;
  for (const auto& p : model_.parameters()) state.push_back(&Variable(p.variable).mutable_value());
  for (const auto& b : model_.buffers()) state.push_back(b.tensor);
  return state;
}

void Training::average_buffers() {
  if (world_.ranks > 1) world_.average_buffers(model_.buffers());
}

bool Training::train_epoch(int epoch, EpochSums& sums) {
  // A resumed epoch goes on in the order it was saved with.
  const std::size_t first_step = epoch == first_epoch_ ? first_step_ : 0;
  if (first_step == 0) {
    if (world_.ranks > 1) order_ = sampler_.indices(static_cast<std::uint64_t>(epoch - 1));
    else shuffle_.shuffle(order_);
  }
  // The epoch's remaining examples, as indices into the training set, batch k of them being step
  // first_step + k. The augmentation depends on (seed, epoch, index) alone, so it is the same
  // whichever step the loader starts from.
  std::vector<std::size_t> rest;
  for (std::size_t i = first_step * local_batch_; i < order_.size(); ++i) rest.push_back(data_.train[order_[i]]);
  const data::DataLoader loader(*data_.train_set,
                                data::DataLoaderOptions(local_batch_)
                                    .seed(augment_seed(s_))
                                    .workers(data_.workers)
                                    .sampler([rest = std::move(rest)](std::uint64_t) { return rest; }),
                                data_.augment);
  auto batches = loader.epoch(static_cast<std::uint64_t>(epoch - 1));
  model_.train();
  last_print_ = Clock::now();
  for (std::size_t step = first_step; step < steps_per_epoch_; ++step) {
    std::optional<data::Batch> b = batches.next();
    XGRAD_CHECK(b.has_value(), "Training: the loader ended before step ", step + 1, " of ", steps_per_epoch_);
    if (!train_step(epoch, step, b->images, b->labels, sums)) return false;
    if (ck_.every > 0 && steps_done_ % static_cast<std::size_t>(ck_.every) == 0) save(epoch, sums);
    show_progress(epoch, step, sums);
  }
  return true;
}

bool Training::train_step(int epoch, std::size_t step, const Tensor& images, const std::vector<std::int64_t>& labels,
                          EpochSums& sums) {
  const auto t0 = Clock::now();
  opt_.zero_grad();
  Variable logits = model_(Variable(images));
  Variable loss = loss_fn_(logits, labels);
  const double loss_value = loss.value()();
  if (!std::isfinite(loss_value)) return diverged(epoch, step, loss_value);
  loss.backward();
  average_gradients_();
  opt_.step();
  schedule_.step();
  if (s_.ema_decay > 0) update_average();
  sums.seconds += std::chrono::duration<double>(Clock::now() - t0).count();
  const auto count = static_cast<double>(labels.size());
  sums.loss += loss_value * count;
  sums.correct += static_cast<double>(count_correct(logits.value(), labels));
  sums.seen += count;
  ++steps_done_;
  images_done_ += labels.size() * static_cast<std::size_t>(world_.ranks);  // every rank takes as many
  return true;
}

void Training::update_average() {
  const std::vector<Tensor*> state = model_state();
  if (average_.empty()) {
    for (const Tensor* t : state) average_.push_back(*t);
    return;
  }
  const double t = static_cast<double>(steps_done_);  // this step's index
  const float d = static_cast<float>(std::min(s_.ema_decay, (1.0 + t) / (10.0 + t)));
  const float w = 1.0f - d;
  for (std::size_t i = 0; i < state.size(); ++i) {
    float* a = average_[i].data();
    const float* x = state[i]->data();
    const auto n = static_cast<std::ptrdiff_t>(average_[i].size());
#pragma omp parallel for schedule(static) if (n >= 65536)
    for (std::ptrdiff_t j = 0; j < n; ++j) a[j] = d * a[j] + w * x[j];
  }
}

void Training::swap_average() {
  const std::vector<Tensor*> state = model_state();
  for (std::size_t i = 0; i < state.size(); ++i) {
    std::swap_ranges(state[i]->begin(), state[i]->end(), average_[i].begin());
  }
}

double Training::evaluate() {
  average_buffers();
  return confusion_accuracy(confusion_matrix(model_, *data_.eval_set, data_.eval, data_.eval_batch,
                                             data_.eval_transform, world_, s_.eval_flip));
}

double Training::evaluate_average() {
  swap_average();
  const double accuracy = evaluate();
  swap_average();
  return accuracy;
}

void Training::end_epoch(int epoch, const EpochSums& sums, std::vector<EpochRecord>& history) {
  seconds_ += sums.seconds;
  const double accuracy = evaluate();
  const bool with_average = !average_.empty();
  const double average_accuracy = with_average ? evaluate_average() : 0.0;
  std::vector<double> totals = {sums.loss, sums.correct, sums.seen};
  world_.reduce(totals);  // the epoch's figures over all ranks
  history.push_back({epoch, totals[0] / totals[2], totals[1] / totals[2], accuracy, sums.seconds});
  const EpochRecord& r = history.back();
  if (world_.leader()) {
    char average[32] = "";
    if (with_average) std::snprintf(average, sizeof average, " (average %.2f%%)", 100 * average_accuracy);
    std::printf("%sepoch %d/%lld  loss %.4f  train acc %5.1f%%  %s acc %5.2f%%%s  %.1f s  %.0f img/s%s\n",
                tty_ ? "\r" : "", epoch, s_.epochs, r.train_loss, 100 * r.train_accuracy,
                data_.keep_best ? "val" : "test", 100 * r.test_accuracy, average, r.seconds,
                totals[2] / r.seconds, tty_ ? "\033[K" : "");
  }
  std::fflush(stdout);
  if (data_.keep_best) {
    // Compared in float, as a checkpoint holds the best accuracy, so that a resumed run chooses
    // as an uninterrupted one does.
    auto keep = [&](double a, bool is_average) {
      if (static_cast<float>(a) <= static_cast<float>(best_accuracy_)) return;
      const std::vector<Tensor*> state = model_state();
      best_weights_.clear();
      for (std::size_t i = 0; i < state.size(); ++i) best_weights_.push_back(is_average ? average_[i] : *state[i]);
      best_epoch_ = epoch;
      best_accuracy_ = a;
      best_is_average_ = is_average;
    };
    keep(accuracy, false);
    if (with_average) keep(average_accuracy, true);
  }
  // Saved after the evaluation, so that a run resumed from here needs none.
  if (ck_.every == 0 && checkpoints_) save(epoch + 1, EpochSums{});
}

// progress.epoch is the epoch in progress (from 0): `epoch` - 1, or `epoch` itself once done.
void Training::save(int epoch, const EpochSums& sums) {
  average_buffers();  // on every rank, so that they go on with the state that a resumed run loads
  if (!average_.empty()) {  // the moving average's buffers likewise
    swap_average();
    average_buffers();
    swap_average();
  }
  if (!world_.leader()) return;  // the ranks hold the same state; rank 0 writes it
  optim::TrainingProgress progress;
  progress.epoch = static_cast<std::uint64_t>(epoch - 1);
  progress.step = steps_done_;
  progress.order = order_;
  progress.rngs = {{"shuffle", shuffle_.state()}, {"global", global_rng().state()}};
  // The reports' figures (float): the finished epochs, the one in progress, the totals.
  const std::vector<EpochRecord> none;
  const std::vector<EpochRecord>& history = history_ ? *history_ : none;
  Tensor past = empty({history.size(), 5});
  for (std::size_t i = 0; i < history.size(); ++i) {
    const EpochRecord& r = history[i];
    const double row[5] = {static_cast<double>(r.epoch), r.train_loss, r.train_accuracy, r.test_accuracy, r.seconds};
    for (std::size_t j = 0; j < 5; ++j) past(i, j) = static_cast<float>(row[j]);
  }
  progress.tensors.emplace_back("history", std::move(past));
  Tensor now = empty({4});
  now(0) = static_cast<float>(sums.loss);
  now(1) = static_cast<float>(sums.seconds);
  now(2) = static_cast<float>(sums.correct);
  now(3) = static_cast<float>(sums.seen);
  progress.tensors.emplace_back("epoch", std::move(now));
  for (std::size_t i = 0; i < average_.size(); ++i) {
    progress.tensors.emplace_back("average." + std::to_string(i), average_[i]);
  }
  if (best_epoch_ > 0) {
    Tensor best = empty({3});
    best(0) = static_cast<float>(best_epoch_);
    best(1) = static_cast<float>(best_accuracy_);
    best(2) = best_is_average_ ? 1.0f : 0.0f;
    progress.tensors.emplace_back("best", std::move(best));
    for (std::size_t i = 0; i < best_weights_.size(); ++i) {
      progress.tensors.emplace_back("best." + std::to_string(i), best_weights_[i]);
    }
  }
  checkpoints_->save(model_, opt_, progress);
}

void Training::resume(const std::string& root, std::vector<EpochRecord>& history) {
  const std::string dir = checkpoints_->latest();
  XGRAD_CHECK(!dir.empty(), "--resume ", root, ": no training-state checkpoint (step-N directory) there");
  optim::TrainingProgress p = checkpoints_->load(dir, model_, opt_);
  const char* other = ": the checkpoint is of a run with other settings (--train-size, --batch-size, --epochs)";
  XGRAD_CHECK(p.order.size() == order_.size() && p.rngs.size() == 2 && p.step <= total_steps_, "--resume ", dir, other);
  // The state comes from a file: an order entry outside the data set would be read out of
  // bounds, a step outside its epoch would wrap first_step_ below zero.
  for (std::size_t i = 0; i < p.order.size(); ++i) {
    XGRAD_CHECK(p.order[i] < data_.train.size(), "--resume ", dir, ": progress/order.npy: entry ", i, " is ",
                p.order[i], ", not one of the ", data_.train.size(), " training samples");
  }
  const bool step_in_epoch = p.epoch * steps_per_epoch_ <= p.step && p.step - p.epoch * steps_per_epoch_ <= steps_per_epoch_;
  XGRAD_CHECK(step_in_epoch, "--resume ", dir, ": progress/counters.npy: step ", p.step, " is not in epoch ", p.epoch,
              " (", steps_per_epoch_, " steps per epoch)");
  for (const auto& [name, state] : p.rngs) (name == "shuffle" ? shuffle_ : global_rng()).set_state(state);
  std::map<std::string, Tensor> tensors(std::make_move_iterator(p.tensors.begin()),
                                        std::make_move_iterator(p.tensors.end()));
  XGRAD_CHECK(tensors.count("history") && tensors.count("epoch") && tensors.at("epoch").size() == 4, "--resume ", dir,
              ": the progress lacks the run's history");
  const Tensor& past = tensors.at("history");
  XGRAD_CHECK(past.dimension() == 2 && past.shape()[1] == 5 && past.shape()[0] <= p.epoch, "--resume ", dir, other);
  history.clear();
  for (std::size_t i = 0; i < past.shape()[0]; ++i) {
    history.push_back({static_cast<int>(past(i, 0)), past(i, 1), past(i, 2), past(i, 3), past(i, 4)});
    seconds_ += past(i, 4);
  }
  const Tensor& now = tensors.at("epoch");
  resumed_sums_ = {now(0), now(1), now(2), now(3)};
  average_.clear();
  if (s_.ema_decay > 0 && p.step > 0) {  // the average starts at the first step
    const std::vector<Tensor*> state = model_state();
    for (std::size_t i = 0; i < state.size(); ++i) {
      const auto it = tensors.find("average." + std::to_string(i));
      XGRAD_CHECK(it != tensors.end() && it->second.shape() == state[i]->shape(), "--resume ", dir,
                  ": the checkpoint holds no moving average of the weights that fits the model (a run without "
                  "--ema-decay?)");
      average_.push_back(it->second);
    }
  }
  if (tensors.count("best")) {
    const std::vector<Tensor*> state = model_state();
    best_weights_.clear();
    for (std::size_t i = 0; i < state.size(); ++i) {
      const auto it = tensors.find("best." + std::to_string(i));
      XGRAD_CHECK(it != tensors.end() && it->second.shape() == state[i]->shape(), "--resume ", dir,
                  ": the best weights and buffers do not fit the model");
      best_weights_.push_back(it->second);
    }
    const Tensor& best = tensors.at("best");
    XGRAD_CHECK(best.size() == 2 || best.size() == 3, "--resume ", dir, ": progress: best holds ", best.size(),
                " values, not 2 or 3");
    best_epoch_ = static_cast<int>(best(0));
    best_accuracy_ = best(1);
    best_is_average_ = best.size() == 3 && best(2) != 0.0f;
  }
  order_ = p.order;
  schedule_.set_steps(p.step);
  steps_done_ = resumed_steps_ = p.step;
  images_done_ = p.step * local_batch_ * static_cast<std::size_t>(world_.ranks);
  first_epoch_ = static_cast<int>(p.epoch) + 1;
  first_step_ = p.step - p.epoch * steps_per_epoch_;
  // Saved after an epoch's last step but before its evaluation: only the evaluation is left.
  resumed_at_epoch_end_ = first_step_ == steps_per_epoch_ && history.size() < first_epoch_ * 1u;
  if (first_step_ == steps_per_epoch_ && !resumed_at_epoch_end_) {
    ++first_epoch_;
    first_step_ = 0;
  }
  if (world_.ranks > 1) {  // each rank's order is its own shard: recomputed, not saved
    order_ = sampler_.indices(static_cast<std::uint64_t>(first_epoch_ - 1));
  }
  if (world_.leader()) {
    std::printf("resumed from %s: epoch %d, step %zu\n", dir.c_str(), first_epoch_,
                std::min(first_step_ + 1, steps_per_epoch_));
  }
}

bool Training::diverged(int epoch, std::size_t step, double loss) const {
  // The other ranks would wait for this one forever: end the job (see run_or_abort).
  XGRAD_CHECK(world_.ranks == 1, "training diverged on rank ", world_.rank, ": the loss is ", loss, " at epoch ", epoch,
              ", step ", step + 1, "; try a smaller --lr (now ", s_.lr, ")");
  if (tty_) std::printf("\n");
  std::fflush(stdout);
  std::fprintf(stderr,
               "alexnet_example: training diverged: the loss is %g at epoch %d, step %zu; "
               "try a smaller --lr (now %g)\n",
               loss, epoch, step + 1, s_.lr);
  return false;
}

// The leader shows its own shard's loss and accuracy (no communication): on a terminal one line
// redrawn every 0.1 s, in a log a line every 30 s.
void Training::show_progress(int epoch, std::size_t step, const EpochSums& sums) {
  const auto now = Clock::now();
  const double since_print = std::chrono::duration<double>(now - last_print_).count();
  const bool last = step + 1 == steps_per_epoch_;
  if (!world_.leader() || !(tty_ ? (since_print > 0.1 || last) : (since_print > 30.0 && !last))) return;
  last_print_ = now;
  const double elapsed = seconds_ + sums.seconds;
  const double eta = elapsed / static_cast<double>(steps_done_ - resumed_steps_) *
                     static_cast<double>(total_steps_ - steps_done_);
  std::printf("%sepoch %d/%lld  step %zu/%zu  loss %.4f  acc %5.1f%%  %.0f img/s  ETA %s%s", tty_ ? "\r" : "", epoch,
              s_.epochs, step + 1, steps_per_epoch_, sums.loss / sums.seen, 100.0 * sums.correct / sums.seen,
              static_cast<double>(images_done_) / elapsed, format_duration(eta).c_str(), tty_ ? "\033[K" : "\n");
  std::fflush(stdout);
}

}  // namespace xgrad::examples
