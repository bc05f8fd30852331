// A training run killed with SIGKILL and resumed from its training-state checkpoints ends with
// the weights of an uninterrupted run of the same length, bit for bit: alexnet_example is run
// as a child process, killed at a random step (and once while a save is in progress), resumed
// with --resume, and its final --save compared file by file with the uninterrupted run's.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include <boost/test/unit_test.hpp>

#include <xgrad/core/npy.hpp>
#include <xgrad/core/rng.hpp>
#include <xgrad/data/mnist.hpp>

#include "tests/test_util.hpp"

namespace fs = std::filesystem;
using namespace xgrad::test;

namespace {

// A short run with dropout on (its mask counter is state too): 24 steps of the mini preset.
const std::vector<std::string> kRun = {"--epochs", "2",       "--train-size", "384", "--test-size", "32",
                                       "--batch-size", "32", "--dropout",    "0.5", "--threads",   "2"};
// 24 steps on Fashion-MNIST: augmentation in a loader worker, and model selection on a
// validation split (the best epoch's weights are state too, and are what --save writes).
const std::vector<std::string> kFashionRun = {"--dataset",    "fashion-mnist", "--epochs",    "2",
                                              "--train-size", "384",           "--val-size",  "256",
                                              "--test-size",  "64",            "--batch-size", "32",
                                              "--dropout",    "0.5",           "--threads",   "2"};

bool fashion_mnist_installed() {
  return fs::exists(std::string(xgrad::data::kFashionMnistDir) + "/train-images-idx3-ubyte.gz");
}

// Starts alexnet_example with run + extra, its output thrown away (its errors too, or into
// errors_to); returns the child's pid.
pid_t start(const std::vector<std::string>& run, const std::vector<std::string>& extra,
            const fs::path& errors_to = {}) {
  std::vector<std::string> args = {XGRAD_ALEXNET_EXAMPLE};
  args.insert(args.end(), run.begin(), run.end());
  args.insert(args.end(), extra.begin(), extra.end());
  std::fflush(nullptr);  // else the child writes out the parent's buffered output again
  const pid_t pid = ::fork();
  BOOST_TEST_REQUIRE(pid >= 0);
  if (pid == 0) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::freopen("/dev/null", "w", stdout);
    if (!errors_to.empty()) std::freopen(errors_to.c_str(), "w", stderr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

// The child's exit status, or -signal when a signal ended it.
int wait_for(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

std::string contents(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Every file of a and b, byte for byte (and the same names); `expected` files in each.
void check_same_files(const fs::path& a, const fs::path& b, std::size_t expected) {
  std::size_t files = 0;
  for (const auto& entry : fs::directory_iterator(a)) {
    const fs::path other = b / entry.path().filename();
    BOOST_TEST_REQUIRE(fs::exists(other), other.string());
    BOOST_TEST(contents(entry.path()) == contents(other), entry.path().filename().string());
    ++files;
  }
  BOOST_TEST(files == static_cast<std::size_t>(std::distance(fs::directory_iterator(b), fs::directory_iterator())));
  BOOST_TEST(files == expected);
}

std::size_t count_entries(const fs::path& dir, const std::string& part) {
  std::size_t n = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    n += it->path().filename().string().find(part) != std::string::npos;
  }
  return n;
}

// The step of the newest complete checkpoint in dir ("step-000000000012" -> 12), 0 if none.
std::size_t latest_step(const fs::path& dir) {
  std::size_t latest = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() == 17 && name.compare(0, 5, "step-") == 0) latest = std::max(latest, std::stoul(name.substr(5)));
  }
  return latest;
}

}  // namespace

// Kills a run with SIGKILL three times (while a save is in progress, then at two random steps),
// resumes each, and compares the final weights with an uninterrupted run's.
// `files`: the tensors --save writes, the model's parameters and buffers.
void kill_and_resume(const std::vector<std::string>& run, std::size_t files, std::uint64_t seed) {
  TempDir tmp;
  const fs::path reference = tmp("reference");
  BOOST_TEST_REQUIRE(wait_for(start(run, {"--save", reference.string()})) == 0);

  xgrad::Rng rng(seed);
  for (int trial = 0; trial < 3; ++trial) {
    BOOST_TEST_CONTEXT("trial " << trial) {
      const fs::path ck = tmp("ck" + std::to_string(trial)), out = tmp("out" + std::to_string(trial));
      const pid_t pid = start(run, {"--checkpoint-dir", ck.string(), "--checkpoint-every", "1"});
      // Trial 0: as soon as a save is under way (its temporary directory exists) after a first
      // complete one. Others: once the run has saved a random step, after a random delay.
      const std::size_t saves = 1 + rng.below(18);
      const auto delay = std::chrono::microseconds(rng.below(20000));
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
      bool killed = false;
      while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) break;  // finished first: resume still must match
        const std::size_t saving = count_entries(ck, ".tmp-"), complete = count_entries(ck, "step-") - saving;
        const bool due = trial == 0 ? saving > 0 && complete > 0 : complete > 0 && latest_step(ck) >= saves;
        if (due) {
          if (trial > 0) std::this_thread::sleep_for(delay);
          ::kill(pid, SIGKILL);
          BOOST_TEST(wait_for(pid) == -SIGKILL);
          killed = true;
          break;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      BOOST_TEST(killed);
      BOOST_TEST_MESSAGE("trial " << trial << ": killed after the save of step " << latest_step(ck) << ", "
                                   << count_entries(ck, ".tmp-") << " save(s) in progress");
      BOOST_TEST_REQUIRE(wait_for(start(run, {"--resume", ck.string(), "--save", out.string()})) == 0);
      check_same_files(reference, out, files);
      BOOST_TEST(count_entries(ck, ".tmp-") == 0u);  // the resumed run's saves cleaned up
    }
  }
}

// The mini model: 8 weights and 8 biases.
BOOST_AUTO_TEST_CASE(killed_and_resumed_runs_end_bit_identical) { kill_and_resume(kRun, 16, 2026); }

// With a moving average of the weights, which is state too and, without a validation split,
// the model the run ends with.
BOOST_AUTO_TEST_CASE(killed_and_resumed_runs_with_a_moving_average_end_bit_identical) {
  std::vector<std::string> run = kRun;
  run.insert(run.end(), {"--ema-decay", "0.9"});
  kill_and_resume(run, 16, 2028);
}

BOOST_AUTO_TEST_CASE(killed_and_resumed_fashion_mnist_runs_end_bit_identical,
                     *boost::unit_test::precondition([](boost::unit_test::test_unit_id) {
                       return boost::test_tools::assertion_result(fashion_mnist_installed());
                     })) {
  // The fmnist model with the recipe's BatchNorm2d after conv3-5: 8 weights and 8 biases, and
  // each BatchNorm2d's weight, bias, running mean and running variance.
  kill_and_resume(kFashionRun, 16 + 3 * 4, 2027);
}

// A training state edited to hold a sample index outside the data set, or a step outside its
// epoch, is refused by --resume naming the file, instead of being read out of bounds.
BOOST_AUTO_TEST_CASE(resume_refuses_an_order_or_counters_outside_the_run) {
  TempDir tmp;
  const fs::path ck = tmp("ck"), errors = tmp("stderr");
  BOOST_TEST_REQUIRE(wait_for(start(kRun, {"--checkpoint-dir", ck.string(), "--checkpoint-every", "12"})) == 0);
  fs::remove_all(ck / "step-000000000024");  // resume from step 12, the end of the first epoch
  const std::string order_file = (ck / "step-000000000012/progress/order.npy").string();
  const std::string counters_file = (ck / "step-000000000012/progress/counters.npy").string();
  const auto order = xgrad::load_npy<std::int64_t>(order_file);
  auto bad_order = order;
  bad_order(5) = 1000000000000;
  xgrad::save_npy<std::int64_t>(order_file, bad_order);
  BOOST_TEST(wait_for(start(kRun, {"--resume", ck.string()}, errors)) == 1);
  BOOST_TEST(contents(errors).find("progress/order.npy: entry 5 is 1000000000000") != std::string::npos, contents(errors));

  xgrad::save_npy<std::int64_t>(order_file, order);
  xgrad::save_npy<std::int64_t>(counters_file, xt::xarray<std::int64_t>({5, 12}));
  BOOST_TEST(wait_for(start(kRun, {"--resume", ck.string()}, errors)) == 1);
  BOOST_TEST(contents(errors).find("progress/counters.npy: step 12 is not in epoch 5") != std::string::npos,
             contents(errors));
}
