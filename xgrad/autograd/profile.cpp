#include <xgrad/autograd/profile.hpp>

#include <chrono>
#include <unordered_map>

namespace xgrad {

namespace {
struct Profile {
  bool on = false;
  int current = -1;
  std::vector<ProfileEntry> entries;
  std::unordered_map<std::string, int> ids;
};
Profile& state() {
  static Profile p;
  return p;
}
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
}  // namespace

void set_profiling(bool on) { state().on = on; }
bool profiling() { return state().on; }
std::vector<ProfileEntry> profile_report() { return state().entries; }
void reset_profile() {
  state().entries.clear();
  state().ids.clear();
}

ProfileScope::ProfileScope(const std::string& name) {
  Profile& p = state();
  if (!p.on) return;
  auto it = p.ids.find(name);
  if (it == p.ids.end()) {
    it = p.ids.emplace(name, static_cast<int>(p.entries.size())).first;
    p.entries.push_back(ProfileEntry{name});
  }
  id_ = it->second;
  previous_ = p.current;
  p.current = id_;
  start_ = now();
}

ProfileScope::~ProfileScope() {
  if (id_ < 0) return;
  Profile& p = state();
  if (id_ < static_cast<int>(p.entries.size())) {
    p.entries[id_].forward_seconds += now() - start_;
    ++p.entries[id_].calls;
  }
  p.current = previous_;
}

int ProfileScope::current() { return state().on ? state().current : -1; }

void ProfileScope::add_backward(int id, double seconds) {
  Profile& p = state();
  if (id >= 0 && id < static_cast<int>(p.entries.size())) p.entries[id].backward_seconds += seconds;
}

}  // namespace xgrad
