// Training-state checkpoints: a run saved mid-epoch and resumed into a freshly built model ends
// with the weights of an uninterrupted run, bit for bit; the newest two are kept; interrupted
// saves and bad checkpoints change nothing.
#include <cstring>
#include <filesystem>
#include <numeric>

#include <boost/test/unit_test.hpp>

#include <map>

#include <xgrad/xgrad.hpp>

#include "tests/test_util.hpp"

using namespace xgrad;
using namespace xgrad::test;
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kSamples = 32, kBatch = 8, kStepsPerEpoch = kSamples / kBatch, kEpochs = 3;
constexpr std::uint64_t kTotalSteps = kStepsPerEpoch * kEpochs;

// Everything one run holds. The model's initial weights come from init_seed: a resumed run
// starts from other weights, which the checkpoint must overwrite.
struct Run {
  explicit Run(std::uint64_t init_seed)
      : model(make_model(init_seed)),
        opt(model->parameters(), optim::SGDOptions(0.1).momentum(0.9).weight_decay(1e-3)),
        schedule(opt, kTotalSteps),
        shuffle(99) {}

  static std::shared_ptr<Sequential> make_model(std::uint64_t seed) {
    Rng rng(seed);
    auto m = std::make_shared<Sequential>();
    m->add(std::make_shared<Linear>(6, 8, true, rng));
    m->emplace<ReLU>();
    m->add("drop", std::make_shared<Dropout>(0.5, 7));  // its mask counter is state too
    m->add(std::make_shared<Linear>(8, 3, true, rng));
    return m;
  }

  // Trains until `stop` steps have been taken in all (or to the end).
  void train_until(std::uint64_t stop) {
    static const Tensor x = random_tensor({kSamples, 6}, 1);
    CrossEntropyLoss loss_fn;
    while (progress.epoch < kEpochs) {
      if (progress.order.empty()) {
        progress.order.resize(kSamples);
        std::iota(progress.order.begin(), progress.order.end(), std::size_t{0});
        shuffle.shuffle(progress.order);
      }
      for (std::size_t s = progress.step % kStepsPerEpoch; s < kStepsPerEpoch; ++s) {
        if (progress.step == stop) return;
        Tensor batch = empty({kBatch, 6});
        std::vector<std::int64_t> labels;
        for (std::size_t i = 0; i < kBatch; ++i) {
          const std::size_t sample = progress.order[s * kBatch + i];
          std::copy(x.data() + sample * 6, x.data() + sample * 6 + 6, batch.data() + i * 6);
          labels.push_back(static_cast<std::int64_t>(sample % 3));
        }
        opt.zero_grad();
        loss_fn((*model)(Variable(batch)), labels).backward();
        opt.step();
        schedule.step();
        ++progress.step;
      }
      ++progress.epoch;
      progress.order.clear();
    }
  }

  std::string save(const optim::TrainingCheckpoints& ckpt, const CheckpointFileHook& hook = nullptr) {
    progress.rngs = {{"shuffle", shuffle.state()}};
    return ckpt.save(*model, opt, progress, hook);
  }

  void resume(const optim::TrainingCheckpoints& ckpt, const std::string& dir) {
    progress = ckpt.load(dir, *model, opt);
    BOOST_TEST_REQUIRE(progress.rngs.size() == 1u);
    BOOST_TEST(progress.rngs[0].first == "shuffle");
    shuffle.set_state(progress.rngs[0].second);
    schedule.set_steps(progress.step);
  }

  std::shared_ptr<Sequential> model;
  optim::SGD opt;
  optim::WarmupCosineLR schedule;
  Rng shuffle;
  optim::TrainingProgress progress;
};

// A run trained for `steps` steps and saved into a fresh checkpoint directory.
struct SavedRun {
  explicit SavedRun(std::uint64_t steps) : ckpt(tmp("ckpt")), run(5) {
    run.train_until(steps);
    dir = run.save(ckpt);
  }
  TempDir tmp;
  optim::TrainingCheckpoints ckpt;
  Run run;
  std::string dir;
};

// The names in dir, sorted.
std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

bool same_weights(Layer& a, Layer& b) {
  const auto pa = a.parameters(), pb = b.parameters();
  if (pa.size() != pb.size()) return false;
  for (std::size_t i = 0; i < pa.size(); ++i) {
    const Tensor &x = pa[i].variable.value(), &y = pb[i].variable.value();
    if (x.shape() != y.shape() || std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) != 0) return false;
  }
  return true;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(training_state)

BOOST_AUTO_TEST_CASE(a_resumed_run_ends_bit_identical_to_an_uninterrupted_one) {
  TempDir tmp;
  Run reference(5);
  reference.train_until(kTotalSteps);
  // Stops mid-epoch (step 6 of 12: epoch 1, step 2 of 4) and in an epoch's first step.
  for (std::uint64_t stop : {std::uint64_t{6}, kStepsPerEpoch}) {
    BOOST_TEST_CONTEXT("stopped after step " << stop) {
      const optim::TrainingCheckpoints ckpt(tmp("run" + std::to_string(stop)));
      {
        Run first(5);
        first.train_until(stop);
        first.save(ckpt);
      }
      Run resumed(1234);  // other initial weights, a fresh optimiser, schedule and generator
      BOOST_TEST(!same_weights(*resumed.model, *reference.model));
      resumed.resume(ckpt, ckpt.latest());
      BOOST_TEST(resumed.progress.step == stop);
      resumed.train_until(kTotalSteps);
      BOOST_TEST(same_weights(*resumed.model, *reference.model));
    }
  }
  // The checker can fail: without the optimiser's momentum the continuation differs.
  const optim::TrainingCheckpoints ckpt(tmp("no_momentum"));
  Run first(5);
  first.train_until(6);
  first.save(ckpt);
  Run resumed(1234);
  resumed.resume(ckpt, ckpt.latest());
  for (std::size_t i = 0; i < resumed.opt.parameters().size(); ++i) resumed.opt.clear_momentum_buffer(i);
  resumed.train_until(kTotalSteps);
  BOOST_TEST(!same_weights(*resumed.model, *reference.model));
}

BOOST_AUTO_TEST_CASE(the_newest_two_are_kept_and_leftovers_ignored) {
  TempDir tmp;
  const optim::TrainingCheckpoints ckpt(tmp("ckpt"));
  BOOST_TEST(ckpt.latest().empty());
  Run run(5);
  for (std::uint64_t step = 1; step <= 4; ++step) {
    run.train_until(step);
    const std::string dir = run.save(ckpt);
    BOOST_TEST(ckpt.latest() == dir);
  }
  // A directory left by a save that was killed: never the latest, removed by the next save.
  fs::create_directories(tmp("ckpt") + "/step-000000000099.tmp-4242/model");
  BOOST_TEST(fs::path(ckpt.latest()).filename() == "step-000000000004");
  BOOST_TEST(names_in(tmp("ckpt")) ==
                 (std::vector<std::string>{"step-000000000003", "step-000000000004", "step-000000000099.tmp-4242"}),
             boost::test_tools::per_element());
  run.train_until(5);
  run.save(ckpt);
  BOOST_TEST(names_in(tmp("ckpt")) == (std::vector<std::string>{"step-000000000004", "step-000000000005"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(an_interrupted_save_leaves_the_previous_checkpoints) {
  SavedRun saved(2);
  saved.run.train_until(3);
  BOOST_CHECK_THROW(saved.run.save(saved.ckpt, [](const std::string&, std::size_t written) {
                      if (written == 3) throw Error("interrupted");
                    }),
                    Error);
  BOOST_TEST(saved.ckpt.latest() == saved.dir);
  Run resumed(77);
  resumed.resume(saved.ckpt, saved.dir);
  BOOST_TEST(resumed.progress.step == 2u);
}

BOOST_AUTO_TEST_CASE(a_checkpoint_of_another_model_changes_nothing) {
  SavedRun saved(3);
  const optim::TrainingCheckpoints& ckpt = saved.ckpt;
  const std::string& dir = saved.dir;
  // A model with other widths: refused, naming a file; its weights are unchanged.
  Rng rng(3);
  Sequential other;
  other.add(std::make_shared<Linear>(6, 9, true, rng));
  other.add(std::make_shared<Linear>(9, 3, true, rng));
  const Tensor before = other.parameters()[0].variable.value();
  optim::SGD other_opt(other.parameters(), optim::SGDOptions(0.1).momentum(0.9));
  BOOST_CHECK_EXCEPTION(ckpt.load(dir, other, other_opt), Error, mentions({"TrainingCheckpoints::load", "momentum.0.weight"}));
  BOOST_TEST(other.parameters()[0].variable.value() == before);
  // A damaged progress file names itself.
  fs::resize_file(dir + "/progress/counters.npy", 20);
  Run resumed(9);
  BOOST_CHECK_EXCEPTION(ckpt.load(dir, *resumed.model, resumed.opt), Error, mentions({"counters.npy"}));
  BOOST_CHECK_THROW(optim::TrainingCheckpoints(""), Error);
  BOOST_CHECK_THROW(optim::TrainingCheckpoints(saved.tmp("x"), 0), Error);
}

BOOST_AUTO_TEST_CASE(named_tensors_round_trip_and_bad_names_are_refused) {
  TempDir tmp;
  const optim::TrainingCheckpoints ckpt(tmp("run"));
  Run run(3);
  run.progress.tensors = {{"best.0.weight", random_tensor({4, 3}, 5)}, {"best_epoch", full({1}, 7.0f)}};
  const std::string dir = run.save(ckpt);
  Run resumed(4);
  const optim::TrainingProgress p = ckpt.load(dir, *resumed.model, resumed.opt);
  BOOST_TEST_REQUIRE(p.tensors.size() == 2u);
  std::map<std::string, Tensor> got(p.tensors.begin(), p.tensors.end());
  BOOST_TEST(got.at("best.0.weight") == run.progress.tensors[0].second);
  BOOST_TEST(got.at("best_epoch") == run.progress.tensors[1].second);
  for (const std::string bad : {"", "a/b", ".."}) {
    run.progress.tensors = {{bad, full({1}, 1.0f)}};
    BOOST_CHECK_EXCEPTION(run.save(ckpt), Error, mentions({"TrainingCheckpoints::save", "tensor name"}));
  }
}

BOOST_AUTO_TEST_CASE(generator_and_dropout_state_round_trip) {
  Rng a(11);
  a.normal();  // leaves a spare normal
  const RngState s = a.state();
  Rng b(0);
  b.set_state(s);
  for (int i = 0; i < 5; ++i) BOOST_TEST(a.normal() == b.normal());
  BOOST_CHECK_EXCEPTION(b.set_state(RngState{{0, 0, 0, 0}, false, 0.0}), Error, mentions({"Rng::set_state"}));

  Dropout d(0.5, 3);
  d(Variable(random_tensor({64}, 2)));
  const auto state = d.extra_state();
  BOOST_TEST(state == (std::vector<std::uint64_t>{3, 1}), boost::test_tools::per_element());
  Dropout e(0.5, 0);
  e.set_extra_state(state);
  const Tensor x = random_tensor({64}, 4);
  BOOST_TEST(d(Variable(x)).value() == e(Variable(x)).value());
  BOOST_CHECK_EXCEPTION(e.set_extra_state({1}), Error, mentions({"Dropout", "extra state"}));
  BOOST_CHECK_EXCEPTION(ReLU().set_extra_state({1}), Error, mentions({"ReLU", "no extra state"}));
}

BOOST_AUTO_TEST_SUITE_END()
