// The bad-input table: each row is a misuse of the public API that must throw xgrad::Error
// with a message naming the layer or op, the argument and (where there are any) the
// shapes, and must leave the object usable: after the error, a valid call on the same
// object still works.
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <ostream>
#include <thread>

#include "examples/models.hpp"
#include <xgrad/core/blas.hpp>
#include <xgrad/xgrad.hpp>

#include "tests/test_util.hpp"

using namespace xgrad;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

struct Case {
  std::string name;
  std::function<void()> bad;                 // must throw xgrad::Error
  std::vector<std::string> must_mention;     // substrings of the message
  std::function<void()> still_works = [] {}; // a valid call afterwards
};

Variable rand_var(const Shape& shape, bool requires_grad = true, std::uint64_t seed = 1) {
  Rng rng(seed);
  Tensor t = empty(shape);
  rng.fill_normal(t, 0.0, 1.0);
  return Variable(std::move(t), requires_grad);
}

// Forward and backward through a layer: proves it still works after an error.
void train_step(Layer& layer, const Shape& input_shape) {
  Variable x = rand_var(input_shape);
  Variable y = layer(x);
  sum(y).backward();
  BOOST_TEST(x.has_grad());
}

// AddressSanitizer's operator new aborts instead of throwing std::bad_alloc: the rows that
// need one are left out under it.
#if defined(__SANITIZE_ADDRESS__)
#define XGRAD_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define XGRAD_ASAN 1
#endif
#endif

// A layer whose forward asks for a vector of `count` floats (a std::length_error beyond
// max_size(), a std::bad_alloc beyond the address space).
class HungryLayer : public Layer {
 public:
  explicit HungryLayer(std::size_t count) : count_(count) {}
  Variable forward(const Variable& x) override {
    std::vector<float> buffer(count_);
    return x;
  }

 private:
  std::size_t count_;
};

// An op whose backward asks for a vector of `count` floats.
Variable hungry_op(const Variable& x, std::size_t count) {
  return record_op("hungry_op", Tensor(x.value()), {x}, [x, count](const Tensor& dout) mutable {
    std::vector<float> buffer(count);
    x.add_grad(dout, "hungry_op");
  });
}

std::vector<Case> make_cases() {
  std::vector<Case> cases;
  auto conv = std::make_shared<Conv2d>(Conv2dOptions(4, 6, 3).padding(1).groups(2));
  auto conv_nopad = std::make_shared<Conv2d>(4, 6, 3);
  auto pool = std::make_shared<MaxPool2d>(MaxPool2dOptions(3).stride(2));
  auto lrn = std::make_shared<LocalResponseNorm>(5);
  auto lrn_within = std::make_shared<LocalResponseNorm>(LrnOptions(3).alpha(1e-4).beta(0.75).k(1.0).mode(LrnMode::WithinChannel));
  auto fc = std::make_shared<Linear>(5, 3);
  auto drop = std::make_shared<Dropout>(0.5, 7);
  auto loss = std::make_shared<CrossEntropyLoss>();
  auto conv_ok = [conv] { train_step(*conv, {2, 4, 5, 5}); };
  auto pool_ok = [pool] { train_step(*pool, {2, 3, 7, 7}); };
  auto lrn_ok = [lrn] { train_step(*lrn, {2, 6, 3, 3}); };
  auto fc_ok = [fc] { train_step(*fc, {4, 5}); };
  auto loss_ok = [loss] {
    Variable logits = rand_var({3, 4});
    (*loss)(logits, {0, 3, 1}).backward();
    BOOST_TEST(logits.has_grad());
  };

  // --- autograd ops and the tape
  cases.push_back({"matmul inner dimensions", [] { matmul(rand_var({2, 3}), rand_var({4, 5})); }, {"matmul", "(2, 3)", "(4, 5)"}});
  cases.push_back({"matmul of a vector", [] { matmul(rand_var({2, 3}), rand_var({3})); }, {"matmul", "2-D", "(3,)"}});
  cases.push_back({"matmul transposed mismatch", [] { matmul(rand_var({2, 3}), rand_var({3, 4}), false, true); },
                   {"matmul", "transposed", "(3, 4)"}});
  cases.push_back({"add without broadcast", [] { add(rand_var({2, 3}), rand_var({4})); }, {"add", "(2, 3)", "(4,)"}});
  cases.push_back({"sub without broadcast", [] { sub(rand_var({2, 3}), rand_var({2, 2})); }, {"sub", "(2, 3)", "(2, 2)"}});
  cases.push_back({"mul without broadcast", [] { mul(rand_var({5}), rand_var({3})); }, {"mul", "(5,)", "(3,)"}});
  cases.push_back({"reshape element count", [] { reshape(rand_var({2, 3}), {4, 2}); }, {"reshape", "(2, 3)", "(4, 2)"}});
  cases.push_back({"mean of nothing", [] { mean(rand_var({0, 3})); }, {"mean", "(0, 3)", "empty"}});
  cases.push_back({"backward on a non-scalar", [] { scale(rand_var({2, 2}), 2.0f).backward(); }, {"backward", "(2, 2)", "scalar"},
                   [] { Tape::active().clear(); }});
  cases.push_back({"backward seed shape", [] { scale(rand_var({2, 2}), 2.0f).backward(zeros({3})); },
                   {"backward", "(3,)", "(2, 2)"}, [] { Tape::active().clear(); }});
  cases.push_back({"backward without requires_grad", [] { sum(rand_var({2}, false)).backward(); }, {"backward", "does not require grad"}});
  cases.push_back({"backward called twice", [] {
                     Variable y = sum(scale(rand_var({2}), 3.0f));
                     y.backward();
                     y.backward();
                   }, {"backward", "already run backward"}});
  cases.push_back({"variable of a finished tape", [] {
                     Variable h = scale(rand_var({3}), 2.0f);
                     sum(h).backward();
                     relu(h);
                   }, {"relu", "(3,)", "already run backward"},
                   [] {
                     Variable x = rand_var({3});
                     sum(relu(x)).backward();
                     BOOST_TEST(x.has_grad());
                   }});
  cases.push_back({"add_grad shape", [] { rand_var({3}).add_grad(zeros({2, 2}), "custom_op"); }, {"custom_op", "(2, 2)", "(3,)"}});
  cases.push_back({"grad before backward", [] { rand_var({3}).grad(); }, {"(3,)", "no gradient"}});
  cases.push_back({"undefined Variable", [] { relu(Variable()); }, {"relu", "undefined"}});
  cases.push_back({"zero threads", [] { set_num_threads(0); }, {"set_num_threads", "0"}, [] { set_num_threads(2); }});
  cases.push_back({"more threads than allowed", [] { set_num_threads(1 << 20); }, {"set_num_threads", "at most", "1048576"},
                   [] { set_num_threads(2); }});
  // --- values changed in place between an op's forward and its backward (version counters)
  {
    // Runs forward(a, b), then change(a, b), then the backward.
    auto changed_after = [](std::function<Variable(Variable&, Variable&)> forward,
                            std::function<void(Variable&, Variable&)> change) {
      return [=] {
        Variable a = rand_var({2, 3}, true, 3), b = rand_var({3, 3}, true, 4);
        Variable y = forward(a, b);
        change(a, b);
        sum(y).backward();
      };
    };
    auto fresh_tape_works = [] {
      Tape::active().clear();
      Variable x = rand_var({2, 3});
      sum(mul(x, x)).backward();
      BOOST_TEST(x.has_grad());
    };
    auto mm = [](Variable& a, Variable& b) { return matmul(a, b); };
    cases.push_back({"matmul input changed in place", changed_after(mm, [](Variable& a, Variable&) { a.mutable_value()(0, 0) += 1.0f; }),
                     {"matmul", "saved input 0", "(2, 3)", "changed in place", "version 0 then, 1 now"}, fresh_tape_works});
    cases.push_back({"matmul weight replaced", changed_after(mm, [](Variable&, Variable& b) { b.mutable_value() = zeros({3, 3}); }),
                     {"matmul", "saved input 1", "(3, 3)", "changed in place"}, fresh_tape_works});
    cases.push_back({"mul input changed twice", changed_after([](Variable& a, Variable&) { return mul(a, a); },
                                                              [](Variable& a, Variable&) {
                                                                a.mutable_value()(0, 0) = 1.0f;
                                                                a.mutable_value()(0, 1) = 2.0f;
                                                              }),
                     {"mul", "saved input", "version 0 then, 2 now"}, fresh_tape_works});
    cases.push_back({"relu output changed in place", [] {
                       Variable r = relu(rand_var({4}));
                       Variable y = sum(r);
                       r.mutable_value().fill(1.0f);
                       y.backward();
                     }, {"relu", "its output", "(4,)", "changed in place"}, fresh_tape_works});
    cases.push_back({"Linear weight stepped before backward", [fc] {
                       Variable y = sum((*fc)(rand_var({4, 5})));
                       optim::SGD opt(fc->parameters(), {0.1});
                       for (auto& q : fc->parameters()) q.variable.add_grad(full(q.variable.shape(), 1.0f), "test");
                       opt.step();
                       y.backward();
                     }, {"Linear", "saved input 1", "'weight'", "(3, 5)", "optimiser step"},
                     [fc] { fc->zero_grad(); train_step(*fc, {4, 5}); }});
    cases.push_back({"Linear input changed in place", [fc] {
                       Variable x = rand_var({4, 5});
                       Variable y = sum((*fc)(x));
                       x.mutable_value().fill(0.0f);
                       y.backward();
                     }, {"Linear", "saved input 0", "(4, 5)"}, fc_ok});
    cases.push_back({"Conv2d weight changed in place", [conv] {
                       Variable y = sum((*conv)(rand_var({2, 4, 5, 5})));
                       conv->parameters()[0].variable.mutable_value()(0, 0, 0, 0) = 3.0f;
                       y.backward();
                     }, {"Conv2d", "saved input 1", "(6, 2, 3, 3)", "changed in place"}, conv_ok});
    cases.push_back({"Conv2d input replaced", [conv] {
                       Variable x = rand_var({2, 4, 5, 5});
                       Variable y = sum((*conv)(x));
                       x.mutable_value() = zeros({2, 4, 5, 5});
                       y.backward();
                     }, {"Conv2d", "saved input 0", "(2, 4, 5, 5)"}, conv_ok});
    cases.push_back({"LRN input changed in place", [lrn] {
                       Variable x = rand_var({2, 6, 3, 3});
                       Variable y = sum((*lrn)(x));
                       x.mutable_value()(0, 0, 0, 0) *= 2.0f;
                       y.backward();
                     }, {"LocalResponseNorm", "saved input 0", "(2, 6, 3, 3)"}, lrn_ok});
    cases.push_back({"loss logits changed in place", [loss] {
                       Variable logits = rand_var({3, 4});
                       Variable l = (*loss)(logits, {0, 1, 2});
                       logits.mutable_value().fill(0.0f);
                       l.backward();
                     }, {"CrossEntropyLoss", "saved input 0", "(3, 4)"}, loss_ok});
    cases.push_back({"checkpoint loaded between forward and backward", [fc] {
                       const test::TempDir dir;
                       const std::string path = (dir.root / "ck").string();
                       save_checkpoint(*fc, path);
                       Variable y = sum((*fc)(rand_var({4, 5})));
                       load_checkpoint(*fc, path);
                       y.backward();
                     }, {"Linear", "saved input 1", "changed in place", "load"}, fc_ok});
  }
  {
    // The gradient checkers: options that would check nothing, or pass anything.
    Variable x = rand_var({3});
    auto f = [x] { return mul(x, x); };
    auto check_with = [x, f](auto set) {
      GradcheckOptions o;
      set(o);
      gradcheck(f, {x}, o);
    };
    auto works = [x, f] { BOOST_TEST(gradcheck(f, {x}).ok); };
    cases.push_back({"gradcheck eps 0", [=] { check_with([](GradcheckOptions& o) { o.eps = 0; }); }, {"gradcheck", "eps"}, works});
    cases.push_back({"gradcheck eps NaN", [=] { check_with([](GradcheckOptions& o) { o.eps = kNaN; }); }, {"gradcheck", "eps", "nan"}, works});
    cases.push_back({"gradcheck negative rtol", [=] { check_with([](GradcheckOptions& o) { o.rtol = -1; }); }, {"gradcheck", "rtol"}, works});
    cases.push_back({"gradcheck zero tolerances", [=] { check_with([](GradcheckOptions& o) { o.rtol = o.atol = 0; }); },
                     {"gradcheck", "atol and rtol"}, works});
    cases.push_back({"gradcheck checks nothing", [=] { check_with([](GradcheckOptions& o) { o.max_elements = 0; }); },
                     {"gradcheck", "max_elements"}, works});
    cases.push_back({"gradcheck output changes shape", [x] {
                       int calls = 0;
                       gradcheck([x, &calls] { return ++calls == 1 ? mul(x, x) : reshape(mul(x, x), {1, 3}); }, {x});
                     }, {"gradcheck", "changed shape", "(3,)", "(1, 3)"}, works});
    auto kernel_forward = [](const KernelInputs& in) { return xt::xarray<double>(in[0] * in[0]); };
    auto kernel_backward = [](const KernelInputs& in, const xt::xarray<double>& dy, KernelInputs& g) { g[0] += 2.0 * in[0] * dy; };
    const KernelInputs kernel_inputs{xt::xarray<double>{1.0, 2.0}};
    cases.push_back({"gradcheck_kernel tolerance NaN", [=] {
                       KernelGradcheckOptions o;
                       o.tolerance = kNaN;
                       gradcheck_kernel(kernel_forward, kernel_backward, kernel_inputs, o);
                     }, {"gradcheck_kernel", "tolerance"},
                     [=] { BOOST_TEST(gradcheck_kernel(kernel_forward, kernel_backward, kernel_inputs).ok); }});
    cases.push_back({"gradcheck_kernel checks nothing", [=] {
                       KernelGradcheckOptions o;
                       o.max_elements = 0;
                       gradcheck_kernel(kernel_forward, kernel_backward, kernel_inputs, o);
                     }, {"gradcheck_kernel", "max_elements"}});
  }

  // --- Linear
  cases.push_back({"Linear feature mismatch", [fc] { (*fc)(rand_var({4, 6})); }, {"Linear(in_features=5", "(N, 5)", "(4, 6)"}, fc_ok});
  cases.push_back({"Linear wrong rank", [fc] { (*fc)(rand_var({4, 5, 1})); }, {"Linear(in_features=5", "(4, 5, 1)"}, fc_ok});
  cases.push_back({"Linear zero features", [] { Linear(0, 3); }, {"Linear", "in_features", "0"}});

  // --- Conv2d
  cases.push_back({"Conv2d wrong rank", [conv] { (*conv)(rand_var({4, 5, 5})); }, {"Conv2d(4, 6", "rank 4", "(4, 5, 5)"}, conv_ok});
  cases.push_back({"Conv2d channel mismatch", [conv] { (*conv)(rand_var({2, 3, 5, 5})); }, {"Conv2d(4, 6", "3 channels", "in_channels"}, conv_ok});
  cases.push_back({"Conv2d kernel larger than padded input", [conv_nopad] { (*conv_nopad)(rand_var({1, 4, 2, 5})); },
                   {"Conv2d(4, 6", "kernel_size", "(1, 4, 2, 5)"}, [conv_nopad] { train_step(*conv_nopad, {1, 4, 3, 3}); }});
  cases.push_back({"Conv2d stride 0", [] { Conv2d(Conv2dOptions(3, 6, 3).stride(0)); }, {"Conv2d", "stride", "0"}});
  cases.push_back({"Conv2d kernel 0", [] { Conv2d(3, 6, 0); }, {"Conv2d", "kernel_size", "0"}});
  cases.push_back({"Conv2d zero channels", [] { Conv2d(0, 6, 3); }, {"Conv2d", "in_channels", "0"}});
  cases.push_back({"Conv2d groups vs in_channels", [] { Conv2d(Conv2dOptions(3, 6, 3).groups(2)); }, {"Conv2d", "groups", "in_channels (3)"}});
  cases.push_back({"Conv2d groups vs out_channels", [] { Conv2d(Conv2dOptions(4, 5, 3).groups(2)); }, {"Conv2d", "groups", "out_channels (5)"}});
  cases.push_back({"Conv2d groups 0", [] { Conv2d(Conv2dOptions(4, 4, 3).groups(0)); }, {"Conv2d", "groups", "0"}});

  // --- MaxPool2d
  cases.push_back({"MaxPool2d wrong rank", [pool] { (*pool)(rand_var({3, 7, 7})); }, {"MaxPool2d", "rank 4", "(3, 7, 7)"}, pool_ok});
  cases.push_back({"MaxPool2d kernel larger than input", [pool] { (*pool)(rand_var({1, 1, 2, 7})); },
                   {"MaxPool2d", "kernel_size", "(1, 1, 2, 7)"}, pool_ok});
  cases.push_back({"MaxPool2d kernel 0", [] { MaxPool2d(0); }, {"MaxPool2d", "kernel_size", "0"}});
  cases.push_back({"MaxPool2d padding over half the kernel", [] { MaxPool2d(MaxPool2dOptions(3).stride(2).padding(2)); }, {"MaxPool2d", "padding", "kernel_size"}});

  // --- Dropout
  cases.push_back({"Dropout p = 1", [] { Dropout(1.0); }, {"Dropout", "p", "1"}});
  cases.push_back({"Dropout p < 0", [] { Dropout(-0.1); }, {"Dropout", "p", "-0.1"}});
  cases.push_back({"Dropout p NaN", [] { Dropout{kNaN}; }, {"Dropout", "p", "nan"}});  // braces: "Dropout(kNaN);" declares a variable

  // --- LocalResponseNorm
  cases.push_back({"LRN rank 2", [lrn] { (*lrn)(rand_var({4, 6})); }, {"LocalResponseNorm", "(4, 6)"}, lrn_ok});
  cases.push_back({"LRN within-channel on 3-D", [lrn_within] { (*lrn_within)(rand_var({2, 3, 4})); },
                   {"LocalResponseNorm", "(2, 3, 4)"}, [lrn_within] { train_step(*lrn_within, {1, 2, 4, 4}); }});
  cases.push_back({"LRN size 0", [] { LocalResponseNorm(0); }, {"LocalResponseNorm", "size", "0"}});
  cases.push_back({"LRN alpha < 0", [] { LocalResponseNorm(LrnOptions(5).alpha(-1e-4)); }, {"LocalResponseNorm", "alpha"}});
  cases.push_back({"LRN k < 0", [] { LocalResponseNorm(LrnOptions(5).alpha(1e-4).beta(0.75).k(-1.0)); }, {"LocalResponseNorm", "k"}});
  cases.push_back({"LRN k = 0 and alpha = 0", [] { LocalResponseNorm(LrnOptions(5).alpha(0.0).beta(0.75).k(0.0)); }, {"LocalResponseNorm", "k", "alpha"}});
  cases.push_back({"LRN beta NaN", [] { LocalResponseNorm(LrnOptions(5).alpha(1e-4).beta(kNaN)); }, {"LocalResponseNorm", "beta"}});
  cases.push_back({"LRN alpha infinite", [] { LocalResponseNorm(LrnOptions(5).alpha(kInf)); }, {"LocalResponseNorm", "alpha"}});

  // --- CrossEntropyLoss
  cases.push_back({"loss label out of range", [loss] { (*loss)(rand_var({3, 4}), {0, 4, 1}); }, {"CrossEntropyLoss", "label 1", "4"}, loss_ok});
  cases.push_back({"loss negative label", [loss] { (*loss)(rand_var({3, 4}), {0, 1, -1}); }, {"CrossEntropyLoss", "label 2", "-1"}, loss_ok});
  cases.push_back({"loss label count", [loss] { (*loss)(rand_var({3, 4}), {0, 1}); }, {"CrossEntropyLoss", "2 labels", "(3, 4)"}, loss_ok});
  cases.push_back({"loss empty batch", [loss] { (*loss)(rand_var({0, 4}), {}); }, {"CrossEntropyLoss", "empty", "(0, 4)"}, loss_ok});
  cases.push_back({"loss logits rank", [loss] { (*loss)(rand_var({3, 4, 1}), {0, 1, 2}); }, {"CrossEntropyLoss", "(3, 4, 1)"}, loss_ok});
  cases.push_back({"loss NaN logits", [loss] {
                     Variable logits = rand_var({2, 3});
                     logits.mutable_value()(1, 2) = static_cast<float>(kNaN);
                     (*loss)(logits, {0, 1});
                   }, {"CrossEntropyLoss", "non-finite", "(2, 3)"}, loss_ok});

  // --- optimiser
  Variable p = rand_var({3});
  cases.push_back({"SGD lr 0", [p] { optim::SGD({{"p", p}}, {0.0}); }, {"SGD", "lr", "0"}});
  cases.push_back({"SGD lr NaN", [p] { optim::SGD({{"p", p}}, {kNaN}); }, {"SGD", "lr", "nan"}});
  cases.push_back({"SGD momentum < 0", [p] { optim::SGD({{"p", p}}, optim::SGDOptions(0.1).momentum(-0.9)); }, {"SGD", "momentum", "-0.9"}});
  cases.push_back({"SGD weight decay infinite", [p] { optim::SGD({{"p", p}}, optim::SGDOptions(0.1).momentum(0.9).weight_decay(kInf)); }, {"SGD", "weight_decay", "inf"}});
  cases.push_back({"SGD nesterov without momentum", [p] { optim::SGD({{"p", p}}, optim::SGDOptions(0.1).nesterov(true)); }, {"SGD", "nesterov", "momentum"}});
  cases.push_back({"SGD set_lr negative", [p] { optim::SGD({{"p", p}}, {0.1}).set_lr(-1.0); }, {"SGD", "lr", "-1"}});
  cases.push_back({"StepLR step_size 0", [p] {
                     optim::SGD opt({{"p", p}}, {0.1});
                     optim::StepLR(opt, 0);
                   }, {"StepLR", "step_size", "0"}});
  cases.push_back({"WarmupCosineLR total_steps 0", [p] {
                     optim::SGD opt({{"p", p}}, {0.1});
                     optim::WarmupCosineLR(opt, 0);
                   }, {"WarmupCosineLR", "total_steps", "0"}});

  // --- settings beyond float: the update and the schedules run in float
  cases.push_back({"SGD lr above float", [p] { optim::SGD({{"p", p}}, {1e300}); }, {"SGD", "lr", "3.40282e+38", "1e+300"}});
  cases.push_back({"SGD lr below float", [p] { optim::SGD({{"p", p}}, {1e-60}); }, {"SGD", "lr", "1.17549e-38", "1e-60"}});
  cases.push_back({"SGD lr subnormal", [p] { optim::SGD({{"p", p}}, {1e-40}); }, {"SGD", "lr", "normal float"}});
  cases.push_back({"SGD momentum above float", [p] { optim::SGD({{"p", p}}, optim::SGDOptions(0.1).momentum(1e39)); },
                   {"SGD", "momentum", "1e+39"}});
  cases.push_back({"SGD momentum below float", [p] { optim::SGD({{"p", p}}, optim::SGDOptions(0.1).momentum(1e-50)); },
                   {"SGD", "momentum", "1e-50"}});
  cases.push_back({"SGD weight decay subnormal", [p] { optim::SGD({{"p", p}}, optim::SGDOptions(0.1).weight_decay(1e-320)); },
                   {"SGD", "weight_decay", "0 or in"}});
  cases.push_back({"SGD weight decay NaN", [p] { optim::SGD({{"p", p}}, optim::SGDOptions(0.1).weight_decay(kNaN)); },
                   {"SGD", "weight_decay", "nan"}});
  {
    auto opt = std::make_shared<optim::SGD>(std::vector<NamedParameter>{{"p", p}}, optim::SGDOptions(0.1));
    auto step_works = [opt, p] {
      opt->set_lr(0.1);
      p.reset_grad();
      p.add_grad(full(p.shape(), 1.0f), "test");
      const float before = p.value()(0);
      opt->step();
      BOOST_TEST(p.value()(0) == before - 0.1f);
    };
    cases.push_back({"SGD set_lr above float", [opt] { opt->set_lr(1e39); }, {"SGD", "lr", "1e+39"}, step_works});
    cases.push_back({"SGD set_lr below float", [opt] { opt->set_lr(1e-39); }, {"SGD", "lr", "1e-39"}, step_works});
    cases.push_back({"SGD set_lr infinite", [opt] { opt->set_lr(kInf); }, {"SGD", "lr", "inf"}, step_works});
    cases.push_back({"StepLR rate past float", [opt] {
                       optim::StepLR schedule(*opt, 1, 1e10);
                       schedule.set_epoch(5);
                     }, {"StepLR", "epoch 5", "beyond float range"}, step_works});
    cases.push_back({"StepLR gamma NaN", [opt] { optim::StepLR(*opt, 1, kNaN); }, {"StepLR", "gamma", "nan"}, step_works});
    cases.push_back({"StepLR gamma infinite", [opt] { optim::StepLR(*opt, 1, kInf); }, {"StepLR", "gamma", "inf"}, step_works});
    cases.push_back({"StepLR negative epoch", [opt] { optim::StepLR(*opt, 1).set_epoch(-1); }, {"StepLR", "epoch", "-1"}, step_works});
    cases.push_back({"WarmupCosineLR warm-up NaN", [opt] { optim::WarmupCosineLR(*opt, 10, kNaN); },
                     {"WarmupCosineLR", "warmup_fraction", "nan"}, step_works});
    cases.push_back({"WarmupCosineLR final fraction 0", [opt] { optim::WarmupCosineLR(*opt, 10, 0.1, 0.0); },
                     {"WarmupCosineLR", "final_fraction", "(0, 1]"}, step_works});
  }

  // --- more misuse of the tape, the module tree and the thread count
  cases.push_back({"backward from inside a backward closure", [] {
                     Variable x = rand_var({2});
                     Variable inner = sum(mul(x, x));
                     Variable y = record_op("Nested", Tensor(x.value() * 2.0f), {x}, [inner](const Tensor&) { inner.backward(); });
                     sum(y).backward();
                   }, {"backward", "called from inside the backward of Nested"}, [] { Tape::active().clear(); }});
  cases.push_back({"clearing the tape inside a backward closure", [] {
                     Variable x = rand_var({2});
                     Variable y = record_op("Clearing", Tensor(x.value() * 2.0f), {x}, [](const Tensor&) { Tape::active().clear(); });
                     sum(y).backward();
                   }, {"Tape::clear", "inside the backward of Clearing"}, [] { Tape::active().clear(); }});
  cases.push_back({"an output of an ended thread's tape", [] {
                     Variable x = rand_var({2});
                     Variable from_thread;
                     std::thread([&] { from_thread = mul(x, x); }).join();
                     relu(from_thread);
                   }, {"relu", "(2,)", "another thread's tape"}});
  cases.push_back({"backward on an undefined Variable", [] { Variable().backward(); }, {"undefined"}});
  cases.push_back({"a layer registered inside itself", [] {
                     auto s = std::make_shared<Sequential>();
                     s->add(s);
                   }, {"Sequential", "contains it", "cycle"}});
  cases.push_back({"a cycle of two layers", [] {
                     auto a = std::make_shared<Sequential>(), b = std::make_shared<Sequential>();
                     a->add(b);
                     b->add(a);
                   }, {"Sequential", "cycle"}});
  cases.push_back({"negative thread count", [] { set_num_threads(-3); }, {"set_num_threads", "-3"}, [] { set_num_threads(2); }});
  cases.push_back({"gradcheck eps infinite", [] {
                     Variable x = rand_var({3});
                     GradcheckOptions o;
                     o.eps = kInf;
                     gradcheck([x] { return mul(x, x); }, {x}, o);
                   }, {"gradcheck", "eps", "inf"}});
  cases.push_back({"gradcheck atol NaN", [] {
                     Variable x = rand_var({3});
                     GradcheckOptions o;
                     o.atol = kNaN;
                     gradcheck([x] { return mul(x, x); }, {x}, o);
                   }, {"gradcheck", "atol"}});
  cases.push_back({"gradcheck without inputs", [] { gradcheck([] { return sum(rand_var({2})); }, {}); }, {"gradcheck"}});

  // --- files that are not what they claim
  cases.push_back({"npy from a directory", [] {
                     const test::TempDir dir;
                     load_npy<float>(dir.root.string());
                   }, {"load_npy", "not a regular file"}});
  cases.push_back({"checkpoint from a file", [fc] {
                     const test::TempDir dir;
                     save_npy<float>((dir.root / "a.npy").string(), zeros({2}));
                     load_checkpoint(*fc, (dir.root / "a.npy").string());
                   }, {"load_checkpoint", "a.npy"}, fc_ok});
  cases.push_back({"checkpoint saved onto a file", [fc] {
                     const test::TempDir dir;
                     save_npy<float>((dir.root / "a.npy").string(), zeros({2}));
                     save_checkpoint(*fc, (dir.root / "a.npy").string());
                   }, {"a.npy", "not a directory"}, fc_ok});
  cases.push_back({"npy of the wrong element type", [] {
                     const test::TempDir dir;
                     save_npy<double>((dir.root / "d.npy").string(), xt::xarray<double>({1.0, 2.0}));
                     load_npy<float>((dir.root / "d.npy").string());
                   }, {"d.npy", "<f8"}});

  // --- models, Sequential, checkpoints, files
  cases.push_back({"unknown preset", [] { examples::make_alexnet_model("vgg", 10); }, {"vgg", "mini", "alexnet"}});
  cases.push_back({"Sequential index", [] {
                     Sequential s;
                     s.emplace<ReLU>();
                     s[3];
                   }, {"Sequential", "index 3", "1 layers"}});
  cases.push_back({"Sequential null layer", [] { Sequential().add(nullptr); }, {"Sequential", "null"}});
  cases.push_back({"checkpoint missing directory", [fc] { load_checkpoint(*fc, "/nonexistent/xgrad/checkpoint"); },
                   {"/nonexistent/xgrad/checkpoint"}, fc_ok});
  cases.push_back({"npy missing file", [] { load_npy<float>("/nonexistent/xgrad/a.npy"); }, {"load_npy", "/nonexistent/xgrad/a.npy"}});

  // --- sizes that overflow, and allocations that fail
  // Sizes are checked at each call, never wrapped: a wrapped count would allocate a small
  // buffer that the kernels then write past. kHuge-sized tensors below hold 0 elements (a 0 in
  // the shape), so nothing large is ever allocated; the allocation rows ask for 2^46 floats
  // (256 TB, beyond any address space), which fails at once without touching memory.
  {
    constexpr std::size_t kMax = std::numeric_limits<std::size_t>::max();
    constexpr std::size_t k2p32 = std::size_t{1} << 32, k2p40 = std::size_t{1} << 40;
    // A tensor whose shape's element count overflows, built by xtensor directly (xgrad's
    // helpers refuse to make one).
    auto wrapped = [] { return Variable(Tensor::from_shape({std::size_t{1} << 40, std::size_t{1} << 40, 0})); };
    auto tiny_images = [] {
      return std::make_shared<data::TensorDataset>(zeros({2, 3, 4, 4}), std::vector<std::int64_t>{0, 1}, 2);
    };

    cases.push_back({"zeros of a wrapping shape", [=] { zeros({k2p32, k2p32}); }, {"zeros", "(4294967296, 4294967296)", "too large"}});
    cases.push_back({"empty beyond the element limit", [] { empty({std::size_t{1} << 61}); }, {"empty", "(2305843009213693952,)", "too large"}});
    cases.push_back({"full of a wrapping shape", [] { full({3, std::size_t{1} << 63}, 1.0f); }, {"full", "too large"}});
    cases.push_back({"Linear in_features beyond BLAS int", [] { Linear(std::size_t{1} << 33, 2); }, {"Linear", "in_features", "8589934592", "too large"}});
    cases.push_back({"Linear out_features beyond BLAS int", [] { Linear(4, std::size_t{1} << 31); }, {"Linear", "out_features", "2147483648"}});
    cases.push_back({"Linear weight beyond the element limit", [] { Linear(2147483647, 2147483647); },
                     {"Linear", "weight", "2147483647 x 2147483647", "too large"}});
    cases.push_back({"matmul output wraps", [=] { matmul(Variable(zeros({k2p40, 0})), Variable(zeros({0, k2p40}))); },
                     {"matmul", "(1099511627776, 1099511627776)", "too large"}});
    cases.push_back({"gemm m beyond BLAS int", [] { gemm(false, false, std::size_t{1} << 31, 1, 1, 1.0f, nullptr, nullptr, 0.0f, nullptr); },
                     {"gemm", "m", "2147483648", "too large"}});
    cases.push_back({"add broadcast overflows", [=] { add(Variable(zeros({k2p40, 1, 0})), Variable(zeros({1, k2p40, 0}))); },
                     {"add", "(1099511627776, 1099511627776, 0)", "too large"}});
    cases.push_back({"sub broadcast overflows", [=] { sub(Variable(zeros({k2p40, 1, 0})), Variable(zeros({1, k2p40, 0}))); },
                     {"sub", "broadcast", "too large"}});
    cases.push_back({"mul broadcast overflows", [=] { mul(Variable(zeros({1, k2p40, 0})), Variable(zeros({k2p40, 1, 0}))); },
                     {"mul", "broadcast", "too large"}});
    cases.push_back({"reshape wrapping element count", [] { reshape(rand_var({2, 3}), {(std::size_t{1} << 63) + 3, 2}); },
                     {"reshape", "(2, 3)", "9223372036854775811", "overflows"}});
    cases.push_back({"relu of a wrapped shape", [=] { relu(wrapped()); }, {"relu", "(1099511627776, 1099511627776, 0)", "too large"}});
    cases.push_back({"scale of a wrapped shape", [=] { scale(wrapped(), 2.0f); }, {"scale", "too large"}});
    cases.push_back({"sum of a wrapped shape", [=] { sum(wrapped()); }, {"sum", "too large"}});
    cases.push_back({"Conv2d padding wraps the padded height", [] {
                       Conv2d c(Conv2dOptions(4, 6, 3).padding(std::numeric_limits<std::size_t>::max() / 2));
                       c(rand_var({1, 4, 5, 5}));
                     }, {"Conv2d(4, 6", "padded height", "too large"}});
    cases.push_back({"Conv2d stride beyond the index range", [=] {
                       Conv2d c(Conv2dOptions(4, 6, 3).stride(kMax));
                       c(rand_var({1, 4, 5, 5}));
                     }, {"Conv2d(4, 6", "stride", "too large"}});
    cases.push_back({"Conv2d kernel x kernel x channels wraps", [=] { Conv2d(1, 1, k2p32); }, {"Conv2d(1, 1", "C/G x K x K", "too large"}});
    cases.push_back({"Conv2d weight beyond the element limit", [] { Conv2d(1, 2147483647, 46340); },
                     {"Conv2d(1, 2147483647", "weight", "too large"}});
    cases.push_back({"Conv2d columns beyond BLAS int", [] {
                       Conv2d c(Conv2dOptions(1, 1, 1).padding(std::size_t{1} << 16));
                       c(rand_var({1, 1, 1, 1}));
                     }, {"Conv2d(1, 1", "N x OH x OW", "too large"}});
    cases.push_back({"Conv2d geometry padded plane overflows", [=] { Conv2dGeometry::make("Conv2d", {1, 1, 1, 1}, 1, 1, 1, 1, k2p40, 1); },
                     {"Conv2d", "padded plane", "too large"}});
    cases.push_back({"Conv2d in a Sequential names the layer", [] {
                       Sequential s;
                       s.emplace<Conv2d>(Conv2dOptions(4, 6, 3).padding(std::numeric_limits<std::size_t>::max() / 2));
                       s(rand_var({1, 4, 5, 5}));
                     }, {"Conv2d(4, 6", "too large"}});
    cases.push_back({"MaxPool2d padding wraps the padded height", [=] { MaxPool2d(MaxPool2dOptions(kMax).padding(kMax / 2))(rand_var({1, 1, 3, 3})); },
                     {"MaxPool2d", "padded height", "too large"}});
    cases.push_back({"MaxPool2d stride beyond the index range", [=] { MaxPool2d(MaxPool2dOptions(3).stride(kMax))(rand_var({1, 1, 5, 5})); },
                     {"MaxPool2d", "stride", "too large"}, pool_ok});
    cases.push_back({"MaxPool2d window reads overflow", [=] {
                       MaxPool2d(MaxPool2dOptions(k2p40).stride(1).padding(k2p40 / 2))(rand_var({1, 1, 1, 1}));
                     }, {"MaxPool2d", "window reads", "too large"}});
    cases.push_back({"LRN forward kernel shape wraps", [=] { lrn_forward<float>(nullptr, nullptr, {k2p40, k2p40, 1}, LrnOptions(5)); },
                     {"LocalResponseNorm", "(1099511627776, 1099511627776, 1)", "too large"}, lrn_ok});
    cases.push_back({"LRN backward kernel shape wraps", [=] {
                       lrn_backward<float>(nullptr, nullptr, nullptr, {k2p40, k2p40, 1}, LrnOptions(5), true);
                     }, {"LocalResponseNorm", "too large"}, lrn_ok});
    cases.push_back({"LRN layer on a wrapped shape", [=] { (*lrn)(wrapped()); }, {"LocalResponseNorm", "too large"}, lrn_ok});
    cases.push_back({"Dropout on a wrapped shape", [=] { (*drop)(wrapped()); }, {"Dropout", "too large"}});
    cases.push_back({"Flatten of a wrapped shape", [=] { Flatten()(wrapped()); },
                     {"flatten", "(1099511627776, 1099511627776, 0)", "too large"}});
    cases.push_back({"loss logits shape wraps", [=] { kernels::validate_cross_entropy({k2p40, k2p40}, {}); },
                     {"CrossEntropyLoss", "(1099511627776, 1099511627776)", "too large"}, loss_ok});
    cases.push_back({"ImageDataset image shape wraps", [=] { data::ImageDataset("imgs", {}, {k2p32, k2p32, 1}, {0}, 10); },
                     {"imgs", "(4294967296, 4294967296, 1)", "too large"}});
    cases.push_back({"ImageDataset pixel count wraps", [] {
                       data::ImageDataset("imgs", {}, {1, std::size_t{1} << 30, std::size_t{1} << 29}, std::vector<std::int64_t>(32, 0), 10);
                     }, {"imgs", "pixels", "32 x 576460752303423488", "too large"}});
    cases.push_back({"TensorDataset images shape wraps", [] {
                       data::TensorDataset(Tensor::from_shape({1, std::size_t{1} << 32, std::size_t{1} << 32, 0}), {0}, 2);
                     }, {"TensorDataset", "too large"}});
    cases.push_back({"RandomCrop padding wraps", [] { data::RandomCrop(3, std::numeric_limits<std::size_t>::max() / 2).output_shape({3, 8, 8}); },
                     {"RandomCrop", "padded height", "too large"}});
    cases.push_back({"RandomCrop crop beyond the element limit", [] { data::RandomCrop(std::size_t{1} << 31, std::size_t{1} << 31).output_shape({3, 8, 8}); },
                     {"RandomCrop", "crop", "(3, 2147483648, 2147483648)", "too large"}});
    cases.push_back({"DataLoader batch beyond the element limit", [=] {
                       auto images = tiny_images();
                       data::DataLoader(*images, data::DataLoaderOptions(2),
                                        std::make_shared<data::RandomCrop>(std::size_t{1} << 29, std::size_t{1} << 29));
                     }, {"DataLoader", "batch", "2 x 3 x 536870912 x 536870912", "too large"}});
    // A failed allocation that is a std::length_error (a vector longer than max_size()): an
    // AllocationError naming the layer or the op whose backward asked for it.
    cases.push_back({"length_error in a layer's forward", [] { HungryLayer{kMax / 2}(rand_var({2})); },
                     {"HungryLayer", "out of memory"}});
    cases.push_back({"length_error in a backward closure", [] {
                       Variable x = rand_var({2});
                       sum(hungry_op(x, kMax / 2)).backward();
                     }, {"hungry_op", "out of memory"}, [] { Tape::active().clear(); }});
#ifndef XGRAD_ASAN
    // Allocations that fit every check but no address space (2^46 floats). Not under
    // AddressSanitizer, whose operator new aborts instead of throwing std::bad_alloc.
    const std::size_t k2p23 = std::size_t{1} << 23, k2p46 = std::size_t{1} << 46;
    // A convolution whose per-thread padded plane ((2^23 + 1)^2 floats) cannot be allocated while
    // its input, output and columns are tiny: the failure happens inside the OpenMP region.
    auto huge_plane = Conv2dOptions(1, 1, 1).padding(std::size_t{1} << 22).stride(std::size_t{1} << 23);
    const Conv2dGeometry plane_geometry = Conv2dGeometry::make("Conv2d", {1, 1, 1, 1}, 1, 1, 1, std::size_t{1} << 23,
                                                               std::size_t{1} << 22, 1);
    cases.push_back({"zeros cannot be allocated", [=] { zeros({k2p46}); }, {"zeros", "out of memory", "(70368744177664,)", "bytes"}});
    cases.push_back({"Linear weight cannot be allocated", [=] { Linear(k2p23, k2p23); }, {"Linear", "out of memory", "(8388608, 8388608)"}});
    cases.push_back({"Conv2d weight cannot be allocated", [] { Conv2d(1, 1 << 20, 1 << 13); },
                     {"Conv2d(1, 1048576", "out of memory", "(1048576, 1, 8192, 8192)"}});
    cases.push_back({"Conv2d forward buffer inside OpenMP", [=] { Conv2d{huge_plane}(rand_var({1, 1, 1, 1})); },
                     {"Conv2d(1, 1", "out of memory", "per-thread buffer"}, [=] {
                       Conv2dOptions small = huge_plane;
                       train_step(*std::make_shared<Conv2d>(small.padding(0)), {1, 1, 3, 3});
                     }});
    cases.push_back({"Conv2d backward kernel buffer inside OpenMP", [=] {
                       std::vector<float> dy(4, 1.0f), w(1, 1.0f), x(1, 1.0f), dx(1), dw(1), scratch(4);
                       kernels::conv2d_backward<float>(dy.data(), w.data(), x.data(), dx.data(), dw.data(), nullptr, scratch.data(), plane_geometry);
                     }, {"Conv2d", "out of memory", "per-thread buffer"}, conv_ok});
    cases.push_back({"im2col kernel buffer inside OpenMP", [=] {
                       std::vector<float> x(1, 1.0f), cols(4);
                       kernels::im2col<float>(x.data(), cols.data(), plane_geometry);
                     }, {"Conv2d", "out of memory", "per-thread buffer"}, conv_ok});
    cases.push_back({"Sequential names the layer that ran out of memory", [=] {
                       Sequential s;
                       s.add(std::make_shared<Conv2d>(huge_plane));
                       s(rand_var({1, 1, 1, 1}));
                     }, {"Sequential", "Conv2d(1, 1", "out of memory"}});
    cases.push_back({"bad_alloc in a layer's forward", [=] { HungryLayer{k2p46}(rand_var({2})); }, {"HungryLayer", "out of memory"}});
    cases.push_back({"bad_alloc in a backward closure", [=] {
                       Variable x = rand_var({2});
                       sum(hungry_op(x, k2p46)).backward();
                     }, {"hungry_op", "out of memory"}, [] { Tape::active().clear(); }});
#endif
  }

  // --- LocalResponseNorm settings beyond float
  cases.push_back({"LRN alpha below float", [] { LocalResponseNorm(LrnOptions(5).alpha(1e-300).k(0.0)); },
                   {"LocalResponseNorm", "alpha", "smallest normal float", "1e-300"}, lrn_ok});
  cases.push_back({"LRN k below float", [] { LocalResponseNorm(LrnOptions(5).k(1e-60)); }, {"LocalResponseNorm", "k", "1.17549e-38", "1e-60"}, lrn_ok});
  cases.push_back({"LRN k subnormal in float", [] { LocalResponseNorm(LrnOptions(5).k(1e-40)); }, {"LocalResponseNorm", "k", "smallest normal float", "1e-40"}, lrn_ok});
  cases.push_back({"LRN k above float", [] { LocalResponseNorm(LrnOptions(5).k(1e39)); }, {"LocalResponseNorm", "k", "3.40282e+38", "1e+39"}, lrn_ok});
  cases.push_back({"LRN alpha above float", [] { LocalResponseNorm(LrnOptions(5).alpha(1e39)); }, {"LocalResponseNorm", "alpha", "3.40282e+38", "1e+39"}, lrn_ok});
  cases.push_back({"LRN beta above float", [] { LocalResponseNorm(LrnOptions(5).beta(-1e39)); }, {"LocalResponseNorm", "beta", "3.40282e+38", "-1e+39"}, lrn_ok});
  cases.push_back({"LRN gradient coefficient above float", [] { LocalResponseNorm(LrnOptions(1).alpha(1e38).beta(10.0)); },
                   {"LocalResponseNorm", "2 * alpha * beta / size", "3.40282e+38", "2e+39", "alpha 1e+38", "beta 10", "size 1"}, lrn_ok});
  cases.push_back({"LRN gradient coefficient below -float", [] { LocalResponseNorm(LrnOptions(2).alpha(3e38).beta(-3.0)); },
                   {"LocalResponseNorm", "2 * alpha * beta / size", "-9e+38", "beta -3", "size 2"}, lrn_ok});
  cases.push_back({"LRN within-channel gradient coefficient above float", [] { LocalResponseNorm(LrnOptions(2).alpha(3e38).beta(8.0).mode(LrnMode::WithinChannel)); },
                   {"LocalResponseNorm", "2 * alpha * beta / size^2", "1.2e+39", "alpha 3e+38", "size 2"}, lrn_ok});
  return cases;
}

// Boost.Test prints a row by its name.
std::ostream& operator<<(std::ostream& out, const Case& c) { return out << c.name; }

const std::vector<Case>& cases() {
  static const std::vector<Case> all = make_cases();
  return all;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(bad_inputs)

BOOST_AUTO_TEST_CASE(the_table_is_complete) { BOOST_TEST(cases().size() >= 150u); }

// One test case per row, reported under the row's name.
BOOST_DATA_TEST_CASE(every_bad_input_throws_a_clear_error_and_leaves_things_usable,
                     boost::unit_test::data::make(cases()), c) {
  const auto [threw_error, message] = xgrad::test::thrown_by(c.bad);
  BOOST_TEST(threw_error, "no xgrad::Error; got: " << message);
  for (const auto& text : c.must_mention) {
    BOOST_TEST(message.find(text) != std::string::npos, "message '" << message << "' lacks '" << text << "'");
  }
  Tape::active().clear();
  BOOST_CHECK_NO_THROW(c.still_works());
}

BOOST_AUTO_TEST_SUITE_END()
