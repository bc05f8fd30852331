#include <xgrad/autograd/tape.hpp>

#include <atomic>
#include <chrono>

#include <xgrad/autograd/profile.hpp>
#include <xgrad/core/error.hpp>

namespace xgrad {

namespace {
thread_local bool g_grad_enabled = true;
std::atomic<std::uint64_t> g_next_generation{1};

std::uint64_t new_generation() { return g_next_generation.fetch_add(1, std::memory_order_relaxed); }

// Marks the tape as running backward (in `op`'s closure) and turns grad mode off, for a scope.
class RunningScope {
 public:
  RunningScope(const char*& running, bool& grad) : running_(running), grad_(grad), previous_(grad) {
    running_ = "backward";
    grad_ = false;
  }
  ~RunningScope() {
    running_ = nullptr;
    grad_ = previous_;
  }
  RunningScope(const RunningScope&) = delete;
  RunningScope& operator=(const RunningScope&) = delete;

 private:
  const char*& running_;
  bool& grad_;
  bool previous_;
};

void check_live(const char* op, const Variable& v, const Tape& tape) {
  XGRAD_CHECK(v.defined(), op, ": an input Variable is undefined");
  const auto& impl = *v.impl();
  if (impl.tape == nullptr) return;  // a leaf
  XGRAD_CHECK(impl.generation == tape.generation(), op,
        ": an input of shape ", shape_str(impl.value.shape()),
        " was produced by a tape that has already run backward (or by another thread's tape); "
        "recompute it, or pass retain_tape=true to the earlier backward");
}
}  // namespace

Tape::Tape() : generation_(new_generation()) {}

Tape& Tape::active() {
  thread_local Tape tape;
  return tape;
}

void Tape::record(const char* op, const Variable& out, std::initializer_list<Variable> saved, bool saves_output,
                  Backward backward) {
  XGRAD_CHECK(running_ == nullptr, op, ": recorded during the backward of ", running_,
              " (ops inside a backward closure must not record)");
  XGRAD_CHECK(out.defined() && out.requires_grad(), op, ": recording an output that does not require grad");
  auto& impl = *out.impl();
  impl.tape = this;
  impl.generation = generation_;
  std::vector<SavedValue> versions;
  versions.reserve(saved.size() + (saves_output ? 1 : 0));
  int input = 0;
  for (const auto& v : saved) {
    XGRAD_CHECK(v.defined(), op, ": a saved input Variable is undefined");
    versions.push_back({v.impl(), v.impl()->version, input++});
  }
  if (saves_output) versions.push_back({out.impl(), impl.version, -1});
  nodes_.push_back(Node{op, out.impl(), std::move(backward), ProfileScope::current(), std::move(versions)});
}

void Tape::check_saved(const Node& node) {
  for (const auto& s : node.saved) {
    if (s.variable->version == s.version) continue;
    const std::string which = s.input < 0 ? std::string("its output") : cat("its saved input ", s.input);
    const std::string name = s.variable->name.empty() ? "" : cat(" '", s.variable->name, "'");
    detail::fail(node.op, ": backward needs the value of ", which, name, " of shape ",
                 shape_str(s.variable->value.shape()), " as the forward saw it, but it was changed in place since "
                 "(version ", s.version, " then, ", s.variable->version,
                 " now); run the forward again after changing it (e.g. after an optimiser step or a load)");
  }
}

void Tape::backward(const Variable& output, const Tensor* seed, bool retain_tape) {
  XGRAD_CHECK(running_ == nullptr, "backward: called from inside the backward of ", running_,
              " (a backward closure must only add into its inputs' grads)");
  XGRAD_CHECK(output.defined(), "backward: the output Variable is undefined");
  XGRAD_CHECK(output.requires_grad(), "backward: the output of shape ", shape_str(output.shape()),
        " does not require grad (no input requires grad, or it was computed under NoGradGuard)");
  check_live("backward", output, *this);
  if (seed == nullptr) {
    XGRAD_CHECK(output.size() == 1, "backward: the output of shape ", shape_str(output.shape()),
          " is not a scalar; pass an explicit output gradient");
  } else {
    XGRAD_CHECK(seed->shape() == output.value().shape(), "backward: the output gradient of shape ",
          shape_str(seed->shape()), " does not match the output of shape ", shape_str(output.shape()));
  }
  // Op outputs carry gradients only within one backward pass.
  for (auto& node : nodes_) {
    node.output->has_grad = false;
    node.output->grad = Tensor();
  }
  if (seed == nullptr) {
    output.add_grad(full(output.shape(), 1.0f, "backward"), "backward");
  } else {
    output.add_grad(*seed, "backward");
  }
  RunningScope scope(running_, g_grad_enabled);
  for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it) {
    if (!it->output->has_grad) continue;
    check_saved(*it);
    running_ = it->op;
    // A closure's failed allocation (its gradient buffers, workspace) is an AllocationError
    // naming the op.
    detail::naming_allocation_failure(it->op, [&] {
      if (it->profile_id >= 0) {
        const auto start = std::chrono::steady_clock::now();
        it->backward(it->output->grad);
        ProfileScope::add_backward(it->profile_id,
                                   std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      } else {
        it->backward(it->output->grad);
      }
    });
    // An op output's gradient is spent once its node has run; free it now to keep the
    // peak memory of backward low (kept when the tape is retained for another pass).
    if (!retain_tape && it->output != output.impl()) {
      it->output->grad = Tensor();
      it->output->has_grad = false;
    }
  }
  running_ = nullptr;
  if (!retain_tape) clear();
}

void Tape::clear() {
  XGRAD_CHECK(running_ == nullptr, "Tape::clear: called from inside the backward of ", running_);
  // Moved out first so that destructors running inside clear() see a consistent tape.
  std::vector<Node> nodes;
  nodes.swap(nodes_);
  generation_ = new_generation();
  nodes.clear();
}

bool grad_enabled() { return g_grad_enabled; }

NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

Variable detail::make_output(const char* op, Tensor value, std::initializer_list<Variable> inputs) {
  Tape& tape = Tape::active();
  bool requires = false;
  for (const auto& v : inputs) {
    check_live(op, v, tape);
    requires = requires || v.requires_grad();
  }
  return Variable(std::move(value), requires && grad_enabled());
}

}  // namespace xgrad
