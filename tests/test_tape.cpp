// autograd/: tape order, accumulation, no-grad, clearing and memory release, the deep
// chain, profiling, and the errors of misuse.
#include <boost/test/unit_test.hpp>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <xtensor/xadapt.hpp>

#include <xgrad/autograd/ops.hpp>
#include <xgrad/autograd/profile.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/rng.hpp>
#include <xgrad/core/threading.hpp>
#include <xgrad/layers/conv2d.hpp>
#include <xgrad/layers/layer.hpp>
#include <xgrad/layers/linear.hpp>
#include <xgrad/layers/local_response_norm.hpp>
#include <xgrad/layers/max_pool2d.hpp>
#include <xgrad/layers/relu.hpp>
#include <xgrad/optim/sgd.hpp>
#include "tests/test_util.hpp"

using namespace xgrad;
using xgrad::test::message_contains;
using xgrad::test::message_has;

namespace {
Variable param(std::initializer_list<float> values) {
  std::vector<float> data(values);
  Tensor t = xt::adapt(data, Shape{data.size()});
  return Variable(std::move(t), true);
}
struct CleanTape {
  CleanTape() { Tape::active().clear(); }
  ~CleanTape() { Tape::active().clear(); }
};
}  // namespace

BOOST_FIXTURE_TEST_SUITE(tape, CleanTape)

BOOST_AUTO_TEST_CASE(records_one_node_per_op_in_order) {
  Variable a = param({1, 2}), b = param({3, 4});
  BOOST_TEST(Tape::active().size() == 0u);
  Variable c = mul(a, b);
  Variable d = add(c, a);
  Variable e = sum(d);
  BOOST_TEST(Tape::active().size() == 3u);
  e.backward();
  BOOST_TEST(Tape::active().size() == 0u);
  // e = sum(a*b + a): de/da = b + 1, de/db = a
  BOOST_TEST(a.grad()(0) == 4.0f);
  BOOST_TEST(a.grad()(1) == 5.0f);
  BOOST_TEST(b.grad()(0) == 1.0f);
  BOOST_TEST(b.grad()(1) == 2.0f);
}

BOOST_AUTO_TEST_CASE(backward_runs_nodes_in_reverse_execution_order) {
  // Each node appends its op name when it runs: the order must be the exact reverse.
  std::vector<std::string> ran;
  Variable x = param({1});
  Variable h = x;
  const char* names[] = {"first", "second", "third"};
  for (const char* name : names) {
    Variable in = h;
    h = record_op(name, h.value() * 2.0f, {h}, [&ran, name, in](const Tensor& dout) {
      ran.push_back(name);
      in.add_grad(Tensor(dout * 2.0f), name);
    });
  }
  h.backward();
  BOOST_TEST(ran == (std::vector<std::string>{"third", "second", "first"}), boost::test_tools::per_element());
  BOOST_TEST(x.grad()(0) == 8.0f);
}

BOOST_AUTO_TEST_CASE(a_variable_used_twice_accumulates) {
  Variable x = param({3});
  Variable y = sum(mul(x, x));  // x used twice by one op
  y.backward();
  BOOST_TEST(x.grad()(0) == 6.0f);
  // Used by two ops, and backward adds on top of the existing grad.
  Variable z = sum(add(scale(x, 2.0f), relu(x)));
  z.backward();
  BOOST_TEST(x.grad()(0) == 6.0f + 3.0f);
  x.zero_grad();
  BOOST_TEST(x.grad()(0) == 0.0f);
}

// The first gradient a kernel gives an activation is stored into an unzeroed buffer
// (grad_buffer(overwrite)); a later one is added. For each layer whose backward does so: the
// gradient of a fresh input, then the same backward onto an input whose gradient already holds
// 0.5 everywhere, which must give 0.5 + the first (and not the first alone, or garbage).
BOOST_AUTO_TEST_CASE(a_first_gradient_is_stored_and_a_later_one_added) {
  Variable v(zeros({3}), true);
  bool overwrite = false;
  v.grad_buffer(overwrite);
  BOOST_TEST(overwrite);
  v.grad_buffer(overwrite);
  BOOST_TEST(!overwrite);

  manual_seed(3);
  std::vector<std::pair<std::string, std::shared_ptr<Layer>>> layers = {
      {"ReLU", std::make_shared<ReLU>()},
      {"MaxPool2d", std::make_shared<MaxPool2d>(2)},
      {"Conv2d", std::make_shared<Conv2d>(Conv2dOptions(2, 3, 3).padding(1))},
      {"LocalResponseNorm", std::make_shared<LocalResponseNorm>(LrnOptions(3))},
      {"Linear", std::make_shared<Linear>(6, 4)},
  };
  Rng rng(5);
  for (auto& [name, layer] : layers) {
    const Shape shape = name == "Linear" ? Shape{3, 6} : Shape{2, 2, 6, 6};
    Tensor xv = empty(shape);
    rng.fill_normal(xv, 0.0, 1.0);
    Variable first(xv, true);
    Variable y = (*layer)(first);
    Tensor seed = empty(y.shape());
    rng.fill_normal(seed, 0.0, 1.0);
    y.backward(seed);
    const Tensor once = first.grad();

    Variable second(xv, true);
    parallel_fill(second.grad_buffer().data(), static_cast<std::int64_t>(second.value().size()), 0.5f);
    (*layer)(second).backward(seed);
    BOOST_TEST(xt::allclose(second.grad(), once + 0.5f, 1e-6, 1e-6), name);
    BOOST_TEST(!xt::allclose(once, zeros(shape)), name);
  }
}

// zero_grad leaves its zeros pending (VariableImpl::grad_zero): the gradient must still read as
// zeros everywhere, and whatever comes next must act on zeros: a kernel that overwrites the
// buffer (Linear's weight gradient, Conv2d's input gradient) stores the fresh gradient, one that
// accumulates (grad_buffer(), add_grad) adds to zeros. The buffer is kept.
BOOST_AUTO_TEST_CASE(zero_grad_acts_as_zeros_for_every_later_use) {
  manual_seed(7);
  Rng rng(8);
  Linear fc(6, 5);
  Conv2d conv(Conv2dOptions(2, 3, 3).padding(1));
  Tensor xv = empty({3, 6}), cv = empty({2, 2, 5, 5});
  rng.fill_normal(xv, 0.0, 1.0);
  rng.fill_normal(cv, 0.0, 1.0);
  auto run = [&](Variable& x, Variable& c) {
    sum(fc(x)).backward();
    sum(conv(c)).backward();
  };
  Variable x(xv, true), c(cv, true);
  run(x, c);
  const Tensor w_once = fc.weight().grad(), b_once = fc.bias().grad(), x_once = x.grad(), c_once = c.grad(),
               k_once = conv.weight().grad();
  const float* buffer = fc.weight().grad().data();
  // Twice without zero_grad: accumulated.
  run(x, c);
  BOOST_TEST(xt::allclose(fc.weight().grad(), 2.0f * w_once, 1e-6, 1e-6));
  for (Variable v : {fc.weight(), fc.bias(), x, c, conv.weight()}) v.zero_grad();
  BOOST_TEST(fc.weight().has_grad());
  // Read: zeros, in the same buffer.
  BOOST_TEST(fc.bias().grad() == zeros({5}));
  // Then the same backward: exactly the fresh gradients (stored or added onto zeros).
  run(x, c);
  BOOST_TEST(fc.weight().grad().data() == buffer);
  BOOST_TEST(fc.weight().grad() == w_once);
  BOOST_TEST(fc.bias().grad() == b_once);
  BOOST_TEST(x.grad() == x_once);
  BOOST_TEST(c.grad() == c_once);
  BOOST_TEST(conv.weight().grad() == k_once);
  // add_grad and grad_buffer() after zero_grad start from zeros too.
  x.zero_grad();
  x.add_grad(xv, "test");
  BOOST_TEST(x.grad() == xv);
  c.zero_grad();
  BOOST_TEST(c.grad_buffer() == zeros({2, 2, 5, 5}));
  // An optimiser step over a gradient zeroed and never written again: weight decay alone.
  fc.zero_grad();
  const Tensor before = fc.weight().value();
  optim::SGD opt(fc.parameters(), optim::SGDOptions(0.5).weight_decay(0.25));
  opt.step();
  BOOST_TEST(xt::allclose(fc.weight().value(), before * (1.0f - 0.5f * 0.25f), 1e-6, 1e-7));
}

BOOST_AUTO_TEST_CASE(no_grad_records_and_saves_nothing) {
  Variable x = param({1, -2});
  {
    NoGradGuard guard;
    BOOST_TEST(!grad_enabled());
    Variable y = sum(relu(mul(x, x)));
    BOOST_TEST(!y.requires_grad());
    BOOST_TEST(Tape::active().size() == 0u);
    BOOST_CHECK_EXCEPTION(y.backward(), Error, [](const Error& e) { return message_contains(e, "does not require grad"); });
    {
      NoGradGuard nested;
    }
    BOOST_TEST(!grad_enabled());
  }
  BOOST_TEST(grad_enabled());
  // Nothing under the guard kept x alive.
  BOOST_TEST(x.impl().use_count() == 1);
}

BOOST_AUTO_TEST_CASE(backward_clears_the_tape_and_frees_saved_tensors) {
  Variable x = param({1, 2, 3});
  std::weak_ptr<detail::VariableImpl> hidden;
  Variable loss;
  {
    Variable h = relu(mul(x, x));
    hidden = h.impl();
    loss = sum(h);
  }
  // The tape keeps the intermediate alive until backward...
  BOOST_TEST(!hidden.expired());
  BOOST_TEST(x.impl().use_count() > 1);
  loss.backward();
  // ...and frees it (and every captured input handle) afterwards.
  BOOST_TEST(hidden.expired());
  BOOST_TEST(x.impl().use_count() == 1);
  BOOST_TEST(Tape::active().size() == 0u);
}

BOOST_AUTO_TEST_CASE(retained_tape_allows_a_second_backward) {
  Variable x = param({2});
  Variable y = sum(mul(x, x));
  y.backward(/*retain_tape=*/true);
  BOOST_TEST(Tape::active().size() == 2u);
  y.backward();
  BOOST_TEST(x.grad()(0) == 8.0f);  // 4 + 4
  BOOST_TEST(Tape::active().size() == 0u);
}

BOOST_AUTO_TEST_CASE(deep_chain_of_ten_thousand_ops) {
  Variable x = param({1.0f});
  Variable h = x;
  for (int i = 0; i < 10000; ++i) h = scale(h, 1.0001f);
  BOOST_TEST(Tape::active().size() == 10000u);
  Variable y = sum(h);
  y.backward();
  BOOST_TEST(x.grad()(0) == std::pow(1.0001f, 10000.0f), boost::test_tools::tolerance(1e-3f));
  BOOST_TEST(Tape::active().size() == 0u);
}

BOOST_AUTO_TEST_CASE(seeded_backward_for_non_scalars) {
  Variable x = param({1, 2, 3});
  Variable y = scale(x, 3.0f);
  BOOST_CHECK_EXCEPTION(y.backward(), Error,
                        [](const Error& e) { return message_contains(e, "(3,)") && message_contains(e, "not a scalar"); });
  Tensor wrong = zeros({2});
  BOOST_CHECK_EXCEPTION(y.backward(wrong), Error,
                        [](const Error& e) { return message_contains(e, "(2,)") && message_contains(e, "(3,)"); });
  Tensor seed = xt::xarray<float>({1.0f, 10.0f, 100.0f});
  y.backward(seed);
  BOOST_TEST(x.grad()(2) == 300.0f);
}

BOOST_AUTO_TEST_CASE(backward_twice_and_stale_variables_are_errors) {
  Variable x = param({1, 2});
  Variable h = mul(x, x);
  Variable y = sum(h);
  y.backward();
  BOOST_CHECK_EXCEPTION(y.backward(), Error, [](const Error& e) { return message_contains(e, "already run backward"); });
  // h belongs to the finished tape: using it in a new graph would silently cut gradients.
  BOOST_CHECK_EXCEPTION(sum(h), Error,
                        [](const Error& e) { return message_contains(e, "sum") && message_contains(e, "already run backward"); });
  // The model stays usable: a fresh computation works.
  Variable y2 = sum(mul(x, x));
  y2.backward();
  BOOST_TEST(x.grad()(1) == 8.0f);
}

BOOST_AUTO_TEST_CASE(add_grad_checks_shapes) {
  Variable x = param({1, 2, 3});
  BOOST_CHECK_EXCEPTION(x.add_grad(zeros({2, 2}), "myop"), Error, [](const Error& e) {
    return message_contains(e, "myop") && message_contains(e, "(2, 2)") && message_contains(e, "(3,)");
  });
  BOOST_CHECK_EXCEPTION(x.grad(), Error, [](const Error& e) { return message_contains(e, "no gradient"); });
  Variable undefined;
  BOOST_CHECK_THROW(sum(undefined), Error);
}

BOOST_AUTO_TEST_CASE(intermediate_grads_are_released_during_backward) {
  Variable x = param({1, 2});
  Variable h = mul(x, x);
  Variable y = sum(h);
  y.backward();
  BOOST_TEST(!h.has_grad());
  BOOST_TEST(x.has_grad());
}

BOOST_AUTO_TEST_CASE(profiling_attributes_time_to_layers) {
  Sequential model;
  model.emplace<Linear>(4, 3);
  model.emplace<ReLU>();
  set_profiling(true);
  reset_profile();
  Variable x(zeros({2, 4}), true);
  sum(model(x)).backward();
  set_profiling(false);
  const auto report = profile_report();
  BOOST_TEST_REQUIRE(report.size() == 2u);
  BOOST_TEST(report[0].name.find("Linear") != std::string::npos);
  BOOST_TEST(report[0].calls == 1u);
  BOOST_TEST(report[0].forward_seconds > 0.0);
  BOOST_TEST(report[0].backward_seconds > 0.0);
}

BOOST_AUTO_TEST_CASE(backward_inside_a_backward_closure_is_an_error_and_ops_there_record_nothing) {
  Variable x = param({1, 2});
  Variable other = sum(mul(x, x));
  bool grad_mode_inside = true;
  std::size_t nodes_inside = 0;
  Variable y = record_op("Nested", x.value() * 2.0f, {x}, [&](const Tensor&) {
    grad_mode_inside = grad_enabled();
    const Variable inner = mul(x, x);  // records nothing: grad mode is off in closures
    nodes_inside = Tape::active().size();
    (void)inner;
    other.backward();
  });
  BOOST_CHECK_EXCEPTION(sum(y).backward(), Error, [](const Error& e) {
    return message_contains(e, "backward") && message_contains(e, "inside the backward of Nested");
  });
  BOOST_TEST(!grad_mode_inside);
  BOOST_TEST(nodes_inside == 4u);  // mul and sum (other), Nested, sum: nothing added inside
  BOOST_TEST(grad_enabled());      // restored after the error
  // The tape still works once cleared.
  Tape::active().clear();
  Variable z = sum(mul(x, x));
  z.backward();
  BOOST_TEST(x.grad()(1) == 4.0f);
}

// An output of a tape that no longer exists (its thread ended) is refused, even when the new
// thread's tape lives at the old one's address and is in its first generation too.
BOOST_AUTO_TEST_CASE(an_output_of_an_ended_threads_tape_is_refused) {
  Variable x = param({1, 2});
  Variable from_thread;
  const Tape* first_tape = nullptr;
  std::thread([&] {
    from_thread = mul(x, x);
    first_tape = &Tape::active();
  }).join();
  std::string message;
  const Tape* second_tape = nullptr;
  std::thread([&] {
    second_tape = &Tape::active();
    try {
      sum(from_thread);
    } catch (const Error& e) {
      message = e.what();
    }
  }).join();
  BOOST_TEST_MESSAGE("the second thread's tape " << (first_tape == second_tape ? "reused" : "did not reuse")
                                                 << " the first one's address");
  BOOST_TEST(message.find("sum") != std::string::npos);
  BOOST_TEST(message.find("another thread's tape") != std::string::npos);
  BOOST_CHECK_THROW(sum(from_thread), Error);  // nor on this thread
}

// Version counters: a value that a backward reads, changed in place after the op ran, is
// refused when that backward runs, naming the op; a value the backward does not read may change.
BOOST_AUTO_TEST_CASE(mutable_value_counts_versions_and_value_does_not) {
  Variable a = param({1, 2});
  BOOST_TEST(a.version() == 0u);
  const float first = a.value()(0);  // reading, even through a non-const handle
  BOOST_TEST(first == 1.0f);
  BOOST_TEST(a.version() == 0u);
  a.mutable_value()(0) = 5.0f;
  BOOST_TEST(a.version() == 1u);
  Variable same = a;  // a handle: the version belongs to the value, not the handle
  same.mutable_value() = zeros({2});
  BOOST_TEST(a.version() == 2u);
}

BOOST_AUTO_TEST_CASE(a_saved_input_changed_in_place_is_refused_naming_the_op) {
  Variable a = param({1, 2}), b = param({3, 4});
  Variable y = sum(mul(a, b));
  a.mutable_value()(1) = 10.0f;  // mul's backward would read the new a for db
  BOOST_CHECK_EXCEPTION(y.backward(), Error,
                        test::mentions({"mul", "saved input 0", "(2,)", "changed in place", "version 0 then, 1 now"}));
  BOOST_TEST(!b.has_grad());  // nothing of mul's backward ran
  // After recomputing, the same Variables work, with the new value.
  Tape::active().clear();
  sum(mul(a, b)).backward();
  BOOST_TEST(b.grad()(1) == 10.0f);
}

BOOST_AUTO_TEST_CASE(a_replaced_value_and_a_changed_output_are_refused) {
  Variable x = param({-1, 2});
  Variable r = relu(x);  // its backward reads its output
  Variable y = sum(mul(r, r));
  r.mutable_value() = Tensor{7.0f, 7.0f};  // replaced: mul saved r (version 0)
  BOOST_CHECK_EXCEPTION(y.backward(), Error, test::mentions({"mul"}));
  Tape::active().clear();
  Variable r2 = relu(x);
  Variable y2 = sum(r2);
  r2.mutable_value()(1) = 3.0f;  // relu saved its output
  BOOST_CHECK_EXCEPTION(y2.backward(), Error, test::mentions({"relu: backward needs the value of its output"}));
}

BOOST_AUTO_TEST_CASE(an_optimiser_step_between_forward_and_backward_is_refused) {
  Linear fc(3, 2);
  Variable x(zeros({4, 3}), true);
  Variable loss = sum(fc(x));
  optim::SGD opt(fc.parameters(), optim::SGDOptions(0.1));
  for (auto& p : fc.parameters()) p.variable.add_grad(full(p.variable.shape(), 1.0f), "test");
  opt.step();  // changes the weight (and the bias) in place
  BOOST_CHECK_EXCEPTION(loss.backward(), Error, test::mentions({"Linear: backward needs the value of its saved input 1"}));
}

BOOST_AUTO_TEST_CASE(an_input_whose_value_backward_does_not_read_may_change) {
  Variable a = param({1, 2}), b = param({3, 4});
  Variable y = sum(add(scale(a, 2.0f), b));
  a.mutable_value()(0) = 100.0f;  // add and scale need only shapes
  b.mutable_value()(0) = 100.0f;
  y.backward();
  BOOST_TEST(a.grad()(0) == 2.0f);
  BOOST_TEST(b.grad()(1) == 1.0f);
}

BOOST_AUTO_TEST_SUITE_END()
