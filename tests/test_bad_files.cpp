// The bad-file table: each row is a hostile or broken file (a .npy header, truncated data, a
// FIFO or device where a file should be, a parameter name no file can have, a defect of a
// checkpoint or training-state directory). Each must give an xgrad::Error whose message
// names the function, the file and what is wrong with it, must not block, and must leave
// things usable: after the error, the model is unchanged and a valid save or load works.
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <xgrad/xgrad.hpp>

#include "tests/test_util.hpp"

namespace fs = std::filesystem;
using namespace xgrad;
using xgrad::test::call_without_blocking;
using xgrad::test::TempDir;

namespace {

// Parameters 0.weight (4, 3), 0.bias (4), 3.weight (2, 4), 3.bias (2); "drop" has extra state.
std::shared_ptr<Sequential> make_model(std::uint64_t seed) {
  Rng rng(seed);
  auto model = std::make_shared<Sequential>();
  model->add(std::make_shared<Linear>(3, 4, true, rng));
  model->emplace<ReLU>();
  model->add("drop", std::make_shared<Dropout>(0.5, 7));
  model->add(std::make_shared<Linear>(4, 2, true, rng));
  return model;
}

std::vector<Tensor> values_of(Layer& model) {
  std::vector<Tensor> values;
  for (auto& p : model.parameters()) values.push_back(p.variable.value());
  return values;
}

bool same_bits(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].shape() != b[i].shape() || std::memcmp(a[i].data(), b[i].data(), a[i].size() * sizeof(float)) != 0) {
      return false;
    }
  }
  return true;
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  BOOST_TEST_REQUIRE(out.good());
}

// A .npy file: magic, version major.minor, the header length (2 bytes for 1.0, else 4), the
// header text as given, then data_bytes zero bytes.
std::string npy_file(const std::string& header, std::size_t data_bytes = 0, int major = 1, int minor = 0) {
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += static_cast<char>(minor);
  const std::size_t n = header.size();
  out += static_cast<char>(n & 0xff);
  out += static_cast<char>((n >> 8) & 0xff);
  if (major != 1) {
    out += static_cast<char>((n >> 16) & 0xff);
    out += static_cast<char>((n >> 24) & 0xff);
  }
  return out + header + std::string(data_bytes, '\0');
}

// The header dict numpy writes, with its three values as given.
std::string dict(const std::string& descr, const std::string& fortran, const std::string& shape) {
  return "{'descr': " + descr + ", 'fortran_order': " + fortran + ", 'shape': " + shape + ", }\n";
}
const std::string kGoodDict = dict("'<f4'", "False", "(2, 3)");  // 24 data bytes

// Everything a case works on, fresh for each: a temporary directory; a model with momentum
// buffers (one step taken), its checkpoint in ckpt/ and a training state in states/.
struct Scene {
  TempDir tmp;
  std::shared_ptr<Sequential> model = make_model(1);
  optim::SGD opt{model->parameters(), optim::SGDOptions(0.1).momentum(0.9)};
  optim::TrainingCheckpoints states{tmp("states")};
  std::string ckpt = tmp("ckpt");
  std::string state;
  std::vector<Tensor> before;  // the model's values after set-up

  Scene() {
    opt.zero_grad();
    sum((*model)(Variable(xgrad::test::random_tensor({2, 3}, 5)))).backward();
    opt.step();
    save_checkpoint(*model, ckpt);
    state = states.save(*model, opt, progress(5));
    before = values_of(*model);
  }
  static optim::TrainingProgress progress(std::uint64_t step) {
    optim::TrainingProgress p;
    p.epoch = 1;
    p.step = step;
    p.order = {2, 0, 1};
    p.rngs = {{"shuffle", Rng(3).state()}};
    return p;
  }
  std::string operator()(const std::string& name) const { return tmp(name); }
  std::string fifo(const std::string& name) const {
    const std::string path = tmp(name);
    BOOST_TEST_REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
    return path;
  }
  void load_state(const std::string& dir) { states.load(dir, *model, opt); }
};

struct Case {
  std::string name;
  std::function<void(Scene&)> bad;            // must throw xgrad::Error
  std::vector<std::string> must_mention;      // substrings of the message; '@' stands for "<temp dir>/"
  std::function<void(Scene&)> still_works;    // checks afterwards
};

std::ostream& operator<<(std::ostream& out, const Case& c) { return out << c.name; }

// --- what must still work after each kind of error

// A valid .npy file in the same directory loads.
void npy_loads(Scene& s) {
  write_file(s("good.npy"), npy_file(kGoodDict, 24));
  const auto a = load_npy<float>(s("good.npy"));
  BOOST_TEST(a.dimension() == 2u);
  BOOST_TEST(a.size() == 6u);
}

// The model is unchanged, and its checkpoint saves and loads into another model bit for bit.
void checkpoint_loads(Scene& s) {
  BOOST_TEST(same_bits(values_of(*s.model), s.before), "the failed load changed the model");
  auto other = make_model(2);
  save_checkpoint(*s.model, s("again"));
  load_checkpoint(*other, s("again"));
  BOOST_TEST(same_bits(values_of(*other), s.before));
}

// As checkpoint_loads, for a training state: the optimiser's momentum survives too.
void state_loads(Scene& s) {
  BOOST_TEST(same_bits(values_of(*s.model), s.before), "the failed load changed the model");
  BOOST_TEST_REQUIRE(s.opt.momentum_buffer(0) != nullptr, "the failed load cleared the momentum");
  const std::string dir = s.states.save(*s.model, s.opt, Scene::progress(6));
  auto other = make_model(2);
  optim::SGD other_opt(other->parameters(), optim::SGDOptions(0.1).momentum(0.9));
  BOOST_TEST(s.states.load(dir, *other, other_opt).step == 6u);
  BOOST_TEST(same_bits(values_of(*other), s.before));
  BOOST_TEST(other_opt.momentum_buffer(0) != nullptr);
}

// A refused save left neither its target nor a temporary directory; a valid save works.
std::function<void(Scene&)> save_left_nothing(const std::string& target) {
  return [target](Scene& s) {
    BOOST_TEST(!fs::exists(s(target)), target << " was created by a refused save");
    for (const auto& entry : fs::directory_iterator(s.tmp.root)) {
      BOOST_TEST(entry.path().filename().string().find(".tmp-") == std::string::npos, entry.path());
    }
    checkpoint_loads(s);
  };
}

// A layer with one parameter and optionally one buffer, under names as given.
struct Named : Layer {
  explicit Named(const std::string& parameter, const std::string& buffer = "") {
    register_parameter(parameter, Variable(zeros<float>({2})));
    if (!buffer.empty()) register_buffer(buffer, zeros<float>({2}));
  }
  Variable forward(const Variable& x) override { return x; }
};

std::vector<Case> make_cases() {
  std::vector<Case> cases;

  // --- .npy headers: load_npy<float> of s("a.npy") holding the bytes given
  auto npy = [&cases](std::string name, std::string bytes, std::vector<std::string> words) {
    words.insert(words.begin(), {"load_npy", "@a.npy"});
    cases.push_back({std::move(name), [bytes](Scene& s) {
                       write_file(s("a.npy"), bytes);
                       load_npy<float>(s("a.npy"));
                     },
                     std::move(words), npy_loads});
  };
  auto header = [&npy](std::string name, std::string text, std::vector<std::string> words, std::size_t data = 24) {
    npy(std::move(name), npy_file(text, data), std::move(words));
  };
  npy("empty file", "", {"bad magic"});
  npy("bad magic", "\x93NUMPX\x01\x00" + npy_file(kGoodDict, 24).substr(8), {"bad magic"});
  npy("file ends in the version", "\x93NUMPY\x01", {"truncated header", "version"});
  npy("file ends in the header length", std::string("\x93NUMPY\x01\x00\x05", 9), {"truncated header", "header length"});
  npy("version 4.0", npy_file(kGoodDict, 24, 4), {"unsupported .npy version 4.0"});
  npy("version 1.1", npy_file(kGoodDict, 24, 1, 1), {"unsupported .npy version 1.1"});
  npy("header length beyond the file", npy_file(kGoodDict, 24).substr(0, 8) + std::string("\xe8\x03", 2) + kGoodDict,
      {"truncated header", "header length is 1000"});
  npy("version 2.0 header length beyond the file",
      npy_file(kGoodDict, 0, 2).substr(0, 8) + std::string("\x00\x00\x00\x7f", 4) + kGoodDict,
      {"truncated header", "header length is 2130706432"});
  header("header is not a dict", "['descr', '<f4']\n", {"header", "not a dict"});
  header("unquoted key", "{descr: '<f4', 'fortran_order': False, 'shape': (2, 3), }",
         {"a key of the dict", "not a quoted string"});
  header("unquoted descr", dict("<f4", "False", "(2, 3)"), {"'descr'", "not a quoted string"});
  header("descr without a closing quote", "{'descr': '<f4    ", {"'descr'", "no closing quote"});
  header("descr with a newline", dict("'<f\n4'", "False", "(2, 3)"), {"'descr'", "byte 0x0a"});
  header("empty descr", dict("''", "False", "(2, 3)"), {"'descr' is empty"});
  header("fortran_order True", dict("'<f4'", "True", "(2, 3)"), {"'fortran_order' is True", "Fortran"});
  header("fortran_order 0", dict("'<f4'", "0", "(2, 3)"), {"'fortran_order' must be True or False"});
  header("fortran_order Falsey", dict("'<f4'", "Falsey", "(2, 3)"), {"'fortran_order' must be True or False"});
  header("shape without the tuple comma", dict("'<f4'", "False", "(6)"), {"'shape' (6) is not a tuple", "(6,)"});
  header("shape a list", dict("'<f4'", "False", "[2, 3]"), {"'shape'", "expected '('"});
  header("shape negative", dict("'<f4'", "False", "(-6,)"), {"dimension 0 of 'shape'", "not a non-negative integer"});
  header("shape double comma", dict("'<f4'", "False", "(2,, 3)"), {"dimension 1 of 'shape'"});
  header("shape missing comma", dict("'<f4'", "False", "(2 3)"), {"expected ','", "dimension 0 of 'shape'"});
  header("shape fraction", dict("'<f4'", "False", "(2.5,)"), {"dimension 0 of 'shape'", "'.'"});
  header("shape leading zero", dict("'<f4'", "False", "(06,)"), {"leading zero", "06"});
  header("shape unclosed", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3",
         {"after dimension 1 of 'shape'", "found the end"});
  header("dimension beyond size_t", dict("'<f4'", "False", "(18446744073709551616,)"),
         {"dimension 0 of 'shape'", "18446744073709551616", "does not fit in size_t"});
  header("shape product beyond size_t", dict("'<f4'", "False", "(4294967296, 4294967296)"),
         {"'shape' (4294967296, 4294967296)", "overflows size_t"});
  header("data size beyond size_t", dict("'<f4'", "False", "(4611686018427387904,)"), {"data size overflows size_t"});
  header("shape far beyond the file (no allocation)", dict("'<f4'", "False", "(1000000000000,)"),
         {"truncated data", "needs 4000000000000 data bytes", "the file has 24"});
  std::string ones = "(";
  for (int i = 0; i < 65; ++i) ones += "1, ";
  header("65 dimensions", dict("'<f4'", "False", ones + ")"), {"'shape' has more than 64 dimensions"}, 4);
  header("unknown field", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'endian': 'little'}",
         {"unknown field 'endian'"});
  header("missing shape", "{'descr': '<f4', 'fortran_order': False}", {"'shape' field is missing"});
  header("descr twice", "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}",
         {"'descr' appears twice"});
  header("no comma between fields", "{'descr': '<f4' 'fortran_order': False, 'shape': (2, 3)}",
         {"expected ',' or '}' after the value of 'descr'"});
  header("trailing garbage", kGoodDict + "x", {"trailing garbage after the dict", "'x'"});
  header("dtype float64", dict("'<f8'", "False", "(2, 3)"), {"dtype is '<f8', expected '<f4'"}, 48);
  header("dtype big-endian", dict("'>f4'", "False", "(2, 3)"), {"dtype is '>f4', expected '<f4'"});
  header("truncated data", kGoodDict, {"truncated data", "(2, 3)", "needs 24", "has 20"}, 20);
  header("trailing data", kGoodDict, {"trailing data", "4 unexpected bytes", "(2, 3)"}, 28);
  cases.push_back({"read_npy_header names itself", [](Scene& s) {
                     write_file(s("a.npy"), npy_file(dict("'<f4'", "False", "(2 3)"), 24));
                     read_npy_header(s("a.npy"));
                   },
                   {"read_npy_header", "@a.npy", "dimension 0 of 'shape'"}, npy_loads});

  // --- not regular files, for load_npy
  cases.push_back({"npy: a directory", [](Scene& s) {
                     fs::create_directory(s("a.npy"));
                     load_npy<float>(s("a.npy"));
                   },
                   {"load_npy", "@a.npy", "not a regular file (it is a directory)"}, npy_loads});
  cases.push_back({"npy: a FIFO does not block", [](Scene& s) {
                     const std::string fifo = s.fifo("a.npy");
                     call_without_blocking(fifo, [fifo] { load_npy<float>(fifo); });
                   },
                   {"load_npy", "@a.npy", "not a regular file (it is a FIFO)"}, npy_loads});
  cases.push_back({"npy: /dev/zero", [](Scene&) { load_npy<float>("/dev/zero"); },
                   {"load_npy", "/dev/zero", "not a regular file (it is a character device)"}, npy_loads});
  cases.push_back({"npy: a link to /dev/zero", [](Scene& s) {
                     fs::create_symlink("/dev/zero", s("a.npy"));
                     read_npy_header(s("a.npy"));
                   },
                   {"read_npy_header", "@a.npy", "character device"}, npy_loads});
  cases.push_back({"npy: a dangling link", [](Scene& s) {
                     fs::create_symlink(s("nowhere.npy"), s("a.npy"));
                     load_npy<float>(s("a.npy"));
                   },
                   {"load_npy", "@a.npy", "does not exist"}, npy_loads});

  // --- names that cannot be file names, refused at save
  auto bad_name = [&cases](std::string name, std::function<void(Scene&)> save, std::vector<std::string> words,
                           std::string target) {
    cases.push_back({std::move(name), std::move(save), std::move(words), save_left_nothing(target)});
  };
  bad_name("parameter name with a '/'", [](Scene& s) {
             Named layer("a/b");
             save_checkpoint(layer, s("out"));
           },
           {"save_checkpoint", "parameter or buffer name 'a/b'", "contains a '/'"}, "out");
  bad_name("parameter name with a NUL", [](Scene& s) {
             Named layer(std::string("a\0b", 3));
             save_checkpoint(layer, s("out"));
           },
           {"save_checkpoint", "name 'a\\0b'", "NUL"}, "out");
  bad_name("parameter name beyond NAME_MAX", [](Scene& s) {
             Named layer(std::string(252, 'w'));  // 252 + ".npy" = 256 bytes
             save_checkpoint(layer, s("out"));
           },
           {"save_checkpoint", "(252 bytes)", "NAME_MAX"}, "out");
  cases.push_back({"parameter name at NAME_MAX saves", [](Scene& s) {
                     Named layer(std::string(251, 'w'));  // 251 + ".npy" = 255 bytes: allowed
                     save_checkpoint(layer, s("out"));
                     Named other(std::string(251, 'w'));
                     load_checkpoint(other, s("out"));
                     Named too_long(std::string(252, 'w'));
                     save_checkpoint(too_long, s("out"));  // the error
                   },
                   {"NAME_MAX"}, [](Scene& s) {
                     BOOST_TEST(fs::exists(s("out/" + std::string(251, 'w') + ".npy")), "the refused save changed out/");
                     checkpoint_loads(s);
                   }});
  bad_name("buffer name with a '/'", [](Scene& s) {
             Named layer("w", "running/mean");
             save_checkpoint(layer, s("out"));
           },
           {"save_checkpoint", "name 'running/mean'", "contains a '/'"}, "out");
  bad_name("momentum file name beyond NAME_MAX", [](Scene& s) {
             auto layer = std::make_shared<Named>(std::string(250, 'm'));  // model file 254 bytes, momentum file 263
             optim::SGD opt(layer->parameters(), optim::SGDOptions(0.1).momentum(0.9));
             optim::TrainingCheckpoints(s("run")).save(*layer, opt, Scene::progress(1));
           },
           {"TrainingCheckpoints::save", "parameter name", "NAME_MAX"}, "run/step-000000000001");
  auto bad_generator = [&bad_name](std::string name, std::string generator, std::vector<std::string> words) {
    bad_name(std::move(name), [generator](Scene& s) {
               optim::TrainingProgress p = Scene::progress(1);
               p.rngs = {{generator, Rng(1).state()}};
               s.states.save(*s.model, s.opt, p);
             },
             std::move(words), "states/step-000000000001");
  };
  bad_generator("generator name empty", "", {"TrainingCheckpoints::save", "generator name ''", "empty"});
  bad_generator("generator name '.'", ".", {"generator name '.'", "names a directory"});
  bad_generator("generator name '..'", "..", {"generator name '..'", "names a directory"});
  bad_generator("generator name with a '/'", "../x", {"generator name '../x'", "contains a '/'"});
  bad_generator("generator name with a NUL", std::string("x\0y", 3), {"generator name 'x\\0y'", "NUL"});
  bad_name("layer name with a '/'", [](Scene& s) {
             auto m = make_model(1);
             m->add("a/b", std::make_shared<Dropout>(0.5, 1));  // extra state, in progress/layer.a/b.npy
             optim::SGD opt(m->parameters(), 0.1);
             optim::TrainingCheckpoints(s("run")).save(*m, opt, Scene::progress(1));
           },
           {"TrainingCheckpoints::save", "layer name 'a/b'", "contains a '/'"}, "run/step-000000000001");

  // --- checkpoint directories: load_checkpoint(model, s.ckpt) after the defect
  auto checkpoint = [&cases](std::string name, std::function<void(Scene&)> defect, std::vector<std::string> words) {
    words.insert(words.begin(), "load_checkpoint(");
    cases.push_back({std::move(name), [defect](Scene& s) {
                       defect(s);
                       load_checkpoint(*s.model, s.ckpt);
                     },
                     std::move(words), checkpoint_loads});
  };
  const std::string weight = "/0.weight.npy";
  checkpoint("checkpoint missing", [](Scene& s) { fs::remove_all(s.ckpt); }, {"@ckpt", "does not exist"});
  checkpoint("checkpoint is a file", [](Scene& s) {
               fs::remove_all(s.ckpt);
               write_file(s.ckpt, "x");
             },
             {"@ckpt", "not a directory"});
  checkpoint("checkpoint is a FIFO", [](Scene& s) {
               fs::remove_all(s.ckpt);
               s.fifo("ckpt");
             }, {"@ckpt", "not a directory"});
  checkpoint("parameter file missing", [](Scene& s) { fs::remove(s.ckpt + "/3.weight.npy"); }, {"missing", "3.weight.npy"});
  checkpoint("unexpected file", [](Scene& s) { fs::copy_file(s.ckpt + "/0.bias.npy", s.ckpt + "/1.bias.npy"); },
             {"unexpected", "1.bias.npy"});
  checkpoint("parameter file is a directory", [weight](Scene& s) {
               fs::remove(s.ckpt + weight);
               fs::create_directory(s.ckpt + weight);
             },
             {"0.weight.npy", "read_npy_header", "not a regular file (it is a directory)"});
  checkpoint("parameter file is a FIFO (no block)", [weight](Scene& s) {
               fs::remove(s.ckpt + weight);
               const std::string fifo = s.fifo("ckpt" + weight);
               call_without_blocking(fifo, [&s] { load_checkpoint(*s.model, s.ckpt); });
             },
             {"0.weight.npy", "not a regular file (it is a FIFO)"});
  checkpoint("parameter file links to /dev/zero", [weight](Scene& s) {
               fs::remove(s.ckpt + weight);
               fs::create_symlink("/dev/zero", s.ckpt + weight);
             },
             {"0.weight.npy", "character device"});
  checkpoint("parameter file is a dangling link", [weight](Scene& s) {
               fs::remove(s.ckpt + weight);
               fs::create_symlink(s("gone.npy"), s.ckpt + weight);
             },
             {"0.weight.npy", "does not exist"});
  checkpoint("parameter file of the wrong shape", [weight](Scene& s) { save_npy<float>(s.ckpt + weight, zeros({3, 4})); },
             {"0.weight.npy", "shape is (3, 4), 0.weight expects (4, 3)"});
  checkpoint("parameter file of the wrong dtype", [weight](Scene& s) {
               save_npy<double>(s.ckpt + weight, xt::xarray<double>(zeros<double>({4, 3})));
             },
             {"0.weight.npy", "dtype is '<f8'"});
  checkpoint("parameter file truncated", [](Scene& s) {
               fs::resize_file(s.ckpt + "/3.weight.npy", fs::file_size(s.ckpt + "/3.weight.npy") - 1);
             },
             {"3.weight.npy", "load_npy", "truncated data"});
  checkpoint("parameter file with a corrupt header", [](Scene& s) {
               write_file(s.ckpt + "/0.bias.npy", npy_file(dict("'<f4'", "Flase", "(4,)"), 16));
             },
             {"0.bias.npy", "'fortran_order' must be True or False"});
  checkpoint("parameter file claiming a huge shape", [](Scene& s) {
               write_file(s.ckpt + "/0.bias.npy", npy_file(dict("'<f4'", "False", "(1000000000000,)"), 16));
             },
             {"0.bias.npy", "shape is (1000000000000,), 0.bias expects (4,)"});

  // --- training-state directories: TrainingCheckpoints::load(s.state) after the defect
  auto training = [&cases](std::string name, std::function<void(Scene&)> defect, std::vector<std::string> words) {
    words.insert(words.begin(), "TrainingCheckpoints::load(");
    cases.push_back({std::move(name), [defect](Scene& s) {
                       defect(s);
                       s.load_state(s.state);
                     },
                     std::move(words), state_loads});
  };
  training("state is a file", [](Scene& s) {
             fs::remove_all(s.state);
             write_file(s.state, "x");
           },
           {"not a checkpoint directory"});
  training("counters missing", [](Scene& s) { fs::remove(s.state + "/progress/counters.npy"); },
           {"counters.npy", "does not exist"});
  training("counters of three values", [](Scene& s) {
             save_npy<std::int64_t>(s.state + "/progress/counters.npy", xt::xarray<std::int64_t>({1, 5, 7}));
           },
           {"counters.npy must hold {epoch, step}", "got 3"});
  training("counters as float32", [](Scene& s) {
             save_npy<float>(s.state + "/progress/counters.npy", xt::xarray<float>({1, 5}));
           },
           {"counters.npy", "dtype is '<f4', expected '<i8'"});
  training("order is a FIFO (no block)", [](Scene& s) {
             fs::remove(s.state + "/progress/order.npy");
             const std::string fifo = s.fifo("states/" + fs::path(s.state).filename().string() + "/progress/order.npy");
             call_without_blocking(fifo, [&s] { s.load_state(s.state); });
           },
           {"order.npy", "not a regular file (it is a FIFO)"});
  training("generator of five words", [](Scene& s) {
             save_npy<std::int64_t>(s.state + "/progress/rng.shuffle.npy", xt::xarray<std::int64_t>({1, 2, 3, 4, 5}));
           },
           {"rng.shuffle.npy must hold 6 words, got 5"});
  training("generator in an impossible state", [](Scene& s) {
             save_npy<std::int64_t>(s.state + "/progress/rng.shuffle.npy", xt::xarray<std::int64_t>({0, 0, 0, 0, 0, 0}));
           },
           {"Rng::set_state"});
  training("generator file is a directory", [](Scene& s) {
             fs::remove(s.state + "/progress/rng.shuffle.npy");
               fs::create_directory(s.state + "/progress/rng.shuffle.npy");
           },
           {"rng.shuffle.npy", "not a regular file (it is a directory)"});
  training("layer state of the wrong length", [](Scene& s) {
             save_npy<std::int64_t>(s.state + "/progress/layer.drop.npy", xt::xarray<std::int64_t>({1, 2, 3}));
           },
           {"layer.drop.npy holds 3 words", "'drop'"});
  training("momentum of the wrong shape", [](Scene& s) {
             save_npy<float>(s.state + "/optimizer/momentum.0.weight.npy", zeros({3, 4}));
           },
           {"momentum.0.weight.npy has shape (3, 4)", "(4, 3)"});
  training("momentum file is a dangling link", [](Scene& s) {
             const std::string file = s.state + "/optimizer/momentum.0.bias.npy";
             fs::remove(file);
               fs::create_symlink(s("gone.npy"), file);
           },
           {"momentum.0.bias.npy", "does not exist"});
  training("momentum file links to /dev/zero", [](Scene& s) {
             const std::string file = s.state + "/optimizer/momentum.0.bias.npy";
             fs::remove(file);
               fs::create_symlink("/dev/zero", file);
           },
           {"momentum.0.bias.npy", "character device"});
  training("model directory missing", [](Scene& s) { fs::remove_all(s.state + "/model"); },
           {"load_checkpoint(", "model", "does not exist"});
  training("model file truncated", [](Scene& s) {
             const std::string file = s.state + "/model/0.bias.npy";
             fs::resize_file(file, fs::file_size(file) - 1);
           },
           {"load_checkpoint(", "0.bias.npy", "truncated data"});
  return cases;
}

const std::vector<Case>& cases() {
  static const std::vector<Case> all = make_cases();
  return all;
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (auto pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size())) {
    text.replace(pos, from.size(), to);
  }
  return text;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(bad_files)

BOOST_AUTO_TEST_CASE(the_table_is_complete) { BOOST_TEST(cases().size() >= 40u); }

BOOST_DATA_TEST_CASE(every_bad_file_throws_a_clear_error_and_leaves_things_usable, boost::unit_test::data::make(cases()),
                     c) {
  Scene s;
  const auto [threw_error, message] = xgrad::test::thrown_by([&] { c.bad(s); });
  BOOST_TEST(threw_error, "no xgrad::Error; got: " << message);
  for (const auto& word : c.must_mention) {
    const std::string text = replace_all(word, "@", s.tmp.root.string() + "/");
    BOOST_TEST(message.find(text) != std::string::npos, "message '" << message << "' lacks '" << text << "'");
  }
  BOOST_CHECK_NO_THROW(c.still_works(s));
}

BOOST_AUTO_TEST_SUITE_END()
