#pragma once
// Tape: differentiable ops append one node each, in execution order. backward() walks the
// nodes in reverse (a plain loop: no recursion, no topological sort), handing each node its
// output's gradient; the node adds into its inputs' grads. Afterwards the tape is cleared,
// which frees everything the closures captured.
//
// Each thread has its own active tape (Tape::active()). Under a NoGradGuard nothing is
// recorded and op outputs do not require grad.
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <type_traits>
#include <vector>

#include <xgrad/autograd/variable.hpp>

namespace xgrad {

class Tape {
 public:
  using Backward = std::function<void(const Tensor& dout)>;

  // The calling thread's tape.
  static Tape& active();

  // Appends a node for `out` (which must require grad). backward(dout) runs only if out
  // received a gradient. `saved` are the inputs whose values backward reads, and
  // saves_output says it reads out's value: their versions are noted now, and backward()
  // refuses to run the node (an xgrad::Error naming the op) once any of them has changed in
  // place (Variable::mutable_value), since the gradient would be computed from the wrong values.
  void record(const char* op, const Variable& out, std::initializer_list<Variable> saved, bool saves_output,
              Backward backward);

  // Seeds output's grad (seed == nullptr means 1 for a scalar), runs every node in reverse
  // and, unless retain_tape, clears the tape. Inside the closures grad mode is off (ops they
  // call record nothing), and calling backward() from a closure is an xgrad::Error naming the
  // op. A closure's exception leaves the tape as it was (clear() it or run backward again).
  void backward(const Variable& output, const Tensor* seed, bool retain_tape = false);

  std::size_t size() const { return nodes_.size(); }
  // Unique among all tapes of the process, past and present: a new tape, or a cleared one,
  // draws a number never used before, so an output of a tape that no longer exists is told
  // apart from a live one even when a new tape gets the old one's address.
  std::uint64_t generation() const { return generation_; }
  // Drops every node (and what it captured) and starts a new generation.
  // Throws xgrad::Error when called from inside this tape's backward.
  void clear();

  Tape();
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

 private:
  // A value a node's backward reads, and its version when the op ran.
  struct SavedValue {
    std::shared_ptr<const detail::VariableImpl> variable;
    std::uint64_t version;
    int input;  // its position among the op's inputs, or -1 for the output
  };
  struct Node {
    const char* op;
    std::shared_ptr<detail::VariableImpl> output;
    Backward backward;
    int profile_id;  // ProfileScope that recorded the node, or -1
    std::vector<SavedValue> saved;
  };
  static void check_saved(const Node& node);
  std::vector<Node> nodes_;
  std::uint64_t generation_;
  const char* running_ = nullptr;  // during backward: the op whose closure runs (or "backward")
};

// True unless a NoGradGuard is alive on this thread.
bool grad_enabled();

// Disables recording for its lifetime (nestable), e.g. for evaluation.
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

namespace detail {
// The output Variable of `op`: it requires grad when grad mode is on and any input does.
// Throws xgrad::Error naming the op when an input is undefined or is the output of a tape that
// has already run backward.
Variable make_output(const char* op, Tensor value, std::initializer_list<Variable> inputs);
}  // namespace detail

// For op authors: the one way to make an op's output and record its backward.
// Returns the output of `op` with value `value`; when it requires grad (grad mode on and an
// input requiring grad), `backward` is recorded on the active tape. backward is called as
// backward(dout), or as backward(dout, y) when it takes the output's value too (e.g. ReLU's
// mask); it must ADD into its inputs' grads and capture only what it needs.
//
// `saved` lists the inputs whose values backward reads (for Linear: x and the weight, not the
// bias); the output counts as saved when backward takes y. If any of them is changed in place
// before backward runs, backward throws an xgrad::Error naming the op instead of computing a
// wrong gradient. The form without `saved` treats every input as saved.
template <class Backward>
Variable record_op(const char* op, Tensor value, std::initializer_list<Variable> inputs,
                   std::initializer_list<Variable> saved, Backward&& backward) {
  Variable out = detail::make_output(op, std::move(value), inputs);
  if (!out.requires_grad()) return out;
  if constexpr (std::is_invocable_v<Backward&, const Tensor&, const Tensor&>) {
    // The tape keeps the output alive while its node can run: a weak handle avoids a cycle.
    std::weak_ptr<detail::VariableImpl> y = out.impl();
    Tape::active().record(op, out, saved, true, [y, f = std::forward<Backward>(backward)](const Tensor& dout) mutable {
      f(dout, y.lock()->value);
    });
  } else {
    Tape::active().record(op, out, saved, false, std::forward<Backward>(backward));
  }
  return out;
}

template <class Backward>
Variable record_op(const char* op, Tensor value, std::initializer_list<Variable> inputs, Backward&& backward) {
  return record_op(op, std::move(value), inputs, inputs, std::forward<Backward>(backward));
}

}  // namespace xgrad
