// Checkpoints: bit-exact round trips, atomic saves, and a clear error for every way a
// checkpoint directory can be wrong.
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include <xgrad/xgrad.hpp>
#include "tests/test_util.hpp"

namespace fs = std::filesystem;
using namespace xgrad;
using xgrad::test::TempDir;

namespace {

// A small model with parameters of ranks 1 and 2: 0.weight (4, 3), 0.bias (4), 2.weight (2, 4), 2.bias (2).
std::shared_ptr<Sequential> make_model(std::uint64_t seed) {
  Rng rng(seed);
  auto model = std::make_shared<Sequential>();
  model->add(std::make_shared<Linear>(3, 4, true, rng));
  model->add(std::make_shared<ReLU>());
  model->add(std::make_shared<Linear>(4, 2, true, rng));
  return model;
}

bool same_bits(Layer& a, Layer& b) {
  auto pa = a.parameters(), pb = b.parameters();
  if (pa.size() != pb.size()) return false;
  for (std::size_t i = 0; i < pa.size(); ++i) {
    const Tensor &x = pa[i].variable.value(), &y = pb[i].variable.value();
    if (pa[i].name != pb[i].name || x.shape() != y.shape()) return false;
    if (std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) != 0) return false;
  }
  return true;
}

// The exception message of f(), which must throw xgrad::Error.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  BOOST_FAIL("expected xgrad::Error");
  return {};
}

// Runs f() in a forked child that has switched to the user and group "nobody" (65534) and
// returns the xgrad::Error message it threw, passed back through a pipe; "no error" or
// "child failed: ..." otherwise. Only for root, which may change its user id.
template <class F>
std::string message_as_unprivileged_user(F&& f) {
  int fds[2];
  BOOST_TEST_REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  BOOST_TEST_REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string out;
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) {
      out = std::string("child failed: cannot drop privileges: ") + std::strerror(errno);
    } else {
      try {
        f();
        out = "no error";
      } catch (const xgrad::Error& e) {
        out = e.what();
      } catch (const std::exception& e) {
        out = std::string("child failed: not an xgrad::Error: ") + e.what();
      }
    }
    const ssize_t written = ::write(fds[1], out.data(), out.size());
    ::_exit(written == static_cast<ssize_t>(out.size()) ? 0 : 1);
  }
  ::close(fds[1]);
  std::string msg;
  char buf[512];
  ssize_t got;
  while ((got = ::read(fds[0], buf, sizeof buf)) > 0) msg.append(buf, static_cast<std::size_t>(got));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0), "child exit status " << status);
  return msg;
}

bool contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return true;
  BOOST_TEST_MESSAGE("'" << text << "' does not contain '" << part << "'");
  return false;
}

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

BOOST_AUTO_TEST_CASE(round_trip_is_bit_exact) {
  TempDir tmp;
  auto a = make_model(1), b = make_model(2);
  // Values a decimal text format would mangle.
  Tensor& w = a->parameters()[0].variable.mutable_value();
  w(0, 0) = -0.0f;
  w(0, 1) = std::numeric_limits<float>::denorm_min();
  w(0, 2) = std::numeric_limits<float>::infinity();
  w(1, 0) = std::nextafter(1.0f, 2.0f);
  BOOST_TEST(!same_bits(*a, *b));
  save_checkpoint(*a, tmp("ckpt"));
  load_checkpoint(*b, tmp("ckpt"));
  BOOST_TEST(same_bits(*a, *b));
  // Exactly one file per parameter, PyTorch state_dict names, float32.
  const std::vector<std::string> expected{"0.bias.npy", "0.weight.npy", "2.bias.npy", "2.weight.npy"};
  BOOST_TEST(entries(tmp("ckpt")) == expected, boost::test_tools::per_element());
  const NpyHeader h = read_npy_header(tmp("ckpt/0.weight.npy"));
  BOOST_TEST(h.dtype == "<f4");
  BOOST_TEST((h.shape == Shape{4, 3}));
  // No temporary sibling is left behind.
  BOOST_TEST(entries(tmp.root) == std::vector<std::string>{"ckpt"}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(save_replaces_an_existing_checkpoint) {
  TempDir tmp;
  auto a = make_model(1), b = make_model(2), c = make_model(3);
  save_checkpoint(*a, tmp("ckpt"));
  std::ofstream(tmp("ckpt/notes.txt")) << "old";
  save_checkpoint(*b, tmp("ckpt") + "/");  // a trailing slash names the same directory
  load_checkpoint(*c, tmp("ckpt"));
  BOOST_TEST(same_bits(*b, *c));
  BOOST_TEST(!fs::exists(tmp("ckpt/notes.txt")));  // the whole directory was replaced
  BOOST_TEST(entries(tmp.root) == std::vector<std::string>{"ckpt"}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(interrupted_save_keeps_the_previous_checkpoint) {
  TempDir tmp;
  auto a = make_model(1), b = make_model(2), c = make_model(3);
  save_checkpoint(*a, tmp("ckpt"));
  // The save of b dies after writing two of its four files.
  struct Crash {};
  BOOST_CHECK_THROW(save_checkpoint(*b, tmp("ckpt"),
                                    [](const std::string&, std::size_t written) {
                                      if (written == 2) throw Crash{};
                                    }),
                    Crash);
  load_checkpoint(*c, tmp("ckpt"));
  BOOST_TEST(same_bits(*a, *c));
  BOOST_TEST(entries(tmp.root) == std::vector<std::string>{"ckpt"}, boost::test_tools::per_element());
  // A first save that is interrupted leaves nothing behind.
  BOOST_CHECK_THROW(save_checkpoint(*b, tmp("fresh"), [](const std::string&, std::size_t) { throw Crash{}; }), Crash);
  BOOST_TEST(!fs::exists(tmp("fresh")));
}

BOOST_AUTO_TEST_CASE(failed_load_changes_nothing) {
  TempDir tmp;
  auto a = make_model(1), b = make_model(2), before = make_model(2);
  save_checkpoint(*a, tmp("ckpt"));
  // The last file (in parameter order) is bad: no parameter may change.
  save_npy<float>(tmp("ckpt/2.bias.npy"), zeros<float>({3}));
  BOOST_CHECK_THROW(load_checkpoint(*b, tmp("ckpt")), Error);
  BOOST_TEST(same_bits(*b, *before));
}

BOOST_AUTO_TEST_CASE(truncated_file) {
  TempDir tmp;
  auto a = make_model(1);
  save_checkpoint(*a, tmp("ckpt"));
  const fs::path file = tmp("ckpt/0.weight.npy");
  fs::resize_file(file, fs::file_size(file) - 5);
  const std::string msg = error_of([&] { load_checkpoint(*a, tmp("ckpt")); });
  BOOST_TEST(contains(msg, "0.weight.npy"));
  BOOST_TEST(contains(msg, "truncated"));
}

BOOST_AUTO_TEST_CASE(wrong_dtype) {
  TempDir tmp;
  auto a = make_model(1);
  save_checkpoint(*a, tmp("ckpt"));
  save_npy<double>(tmp("ckpt/0.bias.npy"), zeros<double>({4}));
  const std::string msg = error_of([&] { load_checkpoint(*a, tmp("ckpt")); });
  BOOST_TEST(contains(msg, "0.bias.npy"));
  BOOST_TEST(contains(msg, "'<f8'"));
  BOOST_TEST(contains(msg, "'<f4'"));
}

BOOST_AUTO_TEST_CASE(wrong_shape) {
  TempDir tmp;
  auto a = make_model(1);
  save_checkpoint(*a, tmp("ckpt"));
  save_npy<float>(tmp("ckpt/0.weight.npy"), zeros<float>({3, 4}));  // transposed
  const std::string msg = error_of([&] { load_checkpoint(*a, tmp("ckpt")); });
  BOOST_TEST(contains(msg, "0.weight.npy"));
  BOOST_TEST(contains(msg, "(3, 4)"));
  BOOST_TEST(contains(msg, "(4, 3)"));
}

BOOST_AUTO_TEST_CASE(missing_file) {
  TempDir tmp;
  auto a = make_model(1);
  save_checkpoint(*a, tmp("ckpt"));
  fs::remove(tmp("ckpt/2.weight.npy"));
  const std::string msg = error_of([&] { load_checkpoint(*a, tmp("ckpt")); });
  BOOST_TEST(contains(msg, "missing"));
  BOOST_TEST(contains(msg, "2.weight.npy"));
}

BOOST_AUTO_TEST_CASE(extra_file) {
  TempDir tmp;
  auto a = make_model(1);
  save_checkpoint(*a, tmp("ckpt"));
  save_npy<float>(tmp("ckpt/4.weight.npy"), zeros<float>({2, 2}));
  std::ofstream(tmp("ckpt/README.txt")) << "other files are ignored";
  const std::string msg = error_of([&] { load_checkpoint(*a, tmp("ckpt")); });
  BOOST_TEST(contains(msg, "4.weight.npy"));
  BOOST_TEST(msg.find("README") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(missing_directory) {
  TempDir tmp;
  auto a = make_model(1);
  const std::string msg = error_of([&] { load_checkpoint(*a, tmp("nowhere")); });
  BOOST_TEST(contains(msg, "nowhere"));
  BOOST_TEST(contains(msg, "does not exist"));
  std::ofstream(tmp("plain-file")) << "x";
  BOOST_TEST(contains(error_of([&] { load_checkpoint(*a, tmp("plain-file")); }), "not a directory"));
  BOOST_TEST(contains(error_of([&] { save_checkpoint(*a, tmp("plain-file")); }), "not a directory"));
}

// The load as the current user, or, for root (which reads through permission bits, as in
// many containers), in a child process that has dropped to an unprivileged user id.
BOOST_AUTO_TEST_CASE(unreadable_directory) {
  TempDir tmp;
  auto a = make_model(1);
  save_checkpoint(*a, tmp("ckpt"));
  fs::permissions(tmp("ckpt"), fs::perms::none);
  std::string msg;
  if (::geteuid() != 0) {
    BOOST_TEST_REQUIRE(::access(tmp("ckpt").c_str(), R_OK | X_OK) != 0);
    msg = error_of([&] { load_checkpoint(*a, tmp("ckpt")); });
  } else {
    // The unprivileged user must reach the directory: open up the parents (not ckpt itself).
    fs::permissions(tmp.root, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
    msg = message_as_unprivileged_user([&] { load_checkpoint(*a, tmp("ckpt")); });
  }
  fs::permissions(tmp("ckpt"), fs::perms::owner_all);
  BOOST_TEST(contains(msg, "ckpt"), msg);
  BOOST_TEST(contains(msg, "cannot read"), msg);
  // Readable again, the same checkpoint loads.
  load_checkpoint(*a, tmp("ckpt"));
}

BOOST_AUTO_TEST_CASE(parameter_names_that_cannot_be_file_names_are_refused) {
  TempDir tmp;
  // Registration already refuses a second "w" (and any '.'), so paths are unique; a name with
  // a '/' is refused by the save, before anything is written.
  struct Slash : Layer {
    Slash() { register_parameter("a/b", Variable(zeros<float>({2}))); }
    Variable forward(const Variable& x) override { return x; }
  } slash;
  const std::string msg = error_of([&] { save_checkpoint(slash, tmp("ckpt")); });
  BOOST_TEST(contains(msg, "'a/b'"), msg);
  BOOST_TEST(contains(msg, "file name"), msg);
  BOOST_TEST(!fs::exists(tmp("ckpt")));
  struct Twice : Layer {
    Twice() {
      register_parameter("w", Variable(zeros<float>({2})));
      register_parameter("w", Variable(zeros<float>({2})));
    }
    Variable forward(const Variable& x) override { return x; }
  };
  BOOST_TEST(contains(error_of([] { Twice twice; }), "'w'"));
}
