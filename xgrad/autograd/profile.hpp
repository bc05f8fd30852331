#pragma once
// Per-layer profiling: forward time measured around each scope (Sequential opens one per
// child while profiling is on), backward time attributed to the scope that recorded each
// tape node. Off by default; costs nothing when off. Single-threaded use (the training thread).
#include <cstddef>
#include <string>
#include <vector>

namespace xgrad {

void set_profiling(bool on);
bool profiling();

struct ProfileEntry {
  std::string name;
  double forward_seconds = 0.0;
  double backward_seconds = 0.0;
  std::size_t calls = 0;  // forward calls
};

// Entries in first-seen order.
std::vector<ProfileEntry> profile_report();
void reset_profile();

// Times the enclosed forward work under `name` (when profiling is on) and tags tape nodes
// recorded meanwhile with it. Scopes nest; the innermost one tags.
class ProfileScope {
 public:
  explicit ProfileScope(const std::string& name);
  ~ProfileScope();
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

  // The innermost open scope's id, or -1.
  static int current();
  static void add_backward(int id, double seconds);

 private:
  int id_ = -1, previous_ = -1;
  double start_ = 0.0;
};

}  // namespace xgrad
