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

#include "examples/models.hpp"
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
  cases.push_back({"Conv2d empty batch", [conv] { (*conv)(rand_var({0, 4, 5, 5})); }, {"Conv2d(4, 6", "(0, 4, 5, 5)"}, conv_ok});
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

  // --- LocalResponseNorm settings beyond float
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

BOOST_AUTO_TEST_CASE(the_table_is_complete) { BOOST_TEST(cases().size() >= 70u); }

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
