#pragma once
// Helpers shared by the test suites.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <future>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <system_error>
#include <vector>

#include <boost/test/unit_test.hpp>

#include <xgrad/core/error.hpp>
#include <xgrad/core/rng.hpp>
#include <xgrad/core/tensor.hpp>
#include <xgrad/core/threading.hpp>

namespace xgrad::test {

// True when the error's message contains every part; logs the message and the missing
// part otherwise. For BOOST_CHECK_EXCEPTION predicates.
inline bool message_has(const Error& e, std::initializer_list<const char*> parts) {
  const std::string m = e.what();
  for (const char* p : parts) {
    if (m.find(p) == std::string::npos) {
      BOOST_TEST_MESSAGE("message \"" << m << "\" lacks \"" << p << "\"");
      return false;
    }
  }
  return true;
}

inline bool message_contains(const Error& e, const std::string& text) { return message_has(e, {text.c_str()}); }

// A BOOST_CHECK_EXCEPTION predicate: the message contains every part, e.g.
//   BOOST_CHECK_EXCEPTION(f(), Error, mentions({"Conv2d", "groups", "(2, 3, 8, 8)"}));
inline auto mentions(std::vector<std::string> parts) {
  return [parts = std::move(parts)](const Error& e) {
    for (const std::string& p : parts) {
      if (!message_contains(e, p)) return false;
    }
    return true;
  };
}

// A tensor of uniform values in [lo, hi) from a seeded generator.
inline Tensor random_tensor(const Shape& shape, std::uint64_t seed, double lo = -1.0, double hi = 1.0) {
  Tensor t = empty(shape);
  Rng rng(seed);
  rng.fill_uniform(t, lo, hi);
  return t;
}

// A fresh directory under the system temp dir, removed (with everything in it) afterwards.
struct TempDir {
  std::filesystem::path root;
  TempDir() {
    static int count = 0;
    root = std::filesystem::temp_directory_path() /
           ("xgrad-test-" + std::to_string(::getpid()) + "-" + std::to_string(count++));
    std::filesystem::remove_all(root);
    std::filesystem::create_directories(root);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::permissions(root, std::filesystem::perms::owner_all, std::filesystem::perm_options::add, ec);
    std::filesystem::remove_all(root, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  // The path of `name` inside the directory.
  std::string operator()(const std::string& name) const { return (root / name).string(); }
};

// Calls f, which is to refuse the FIFO `fifo` without opening it for reading, on another
// thread, and rethrows what f throws. Should f block on the FIFO, a writer that opens and
// closes it releases f (with end of file), so the test fails rather than hangs.
template <class F>
void call_without_blocking(const std::string& fifo, F&& f) {
  auto result = std::async(std::launch::async, std::forward<F>(f));
  bool blocked = false;
  for (int attempt = 0; result.wait_for(std::chrono::seconds(attempt == 0 ? 10 : 1)) != std::future_status::ready;
       ++attempt) {
    blocked = true;
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
  }
  BOOST_TEST(!blocked, "blocked on the FIFO " << fifo);
  result.get();
}

// Sets the OpenMP thread count for its lifetime and restores the previous one afterwards.
class ThreadCount {
 public:
  explicit ThreadCount(int n) : previous_(get_num_threads()) { set_num_threads(n); }
  ~ThreadCount() { set_num_threads(previous_); }
  ThreadCount(const ThreadCount&) = delete;
  ThreadCount& operator=(const ThreadCount&) = delete;

 private:
  int previous_;
};

// What `bad` threw, for the bad-input tables: threw_error says whether it was an xgrad::Error;
// message is its text, or says what else was thrown (or that nothing was).
struct Thrown {
  bool threw_error = false;
  std::string message;
};
template <class F>
Thrown thrown_by(F&& bad) {
  Thrown t;
  try {
    bad();
    t.message = "nothing was thrown";
  } catch (const Error& e) {
    t.threw_error = true;
    t.message = e.what();
  } catch (const std::exception& e) {
    t.message = std::string("wrong exception type: ") + e.what();
  }
  return t;
}

}  // namespace xgrad::test
