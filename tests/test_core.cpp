// core/: shapes, errors, .npy I/O, the RNG, threading and GEMM.
#include <boost/test/unit_test.hpp>

#include <strings.h>
#include <sys/resource.h>

#include <cmath>
#include <filesystem>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <array>
#include <vector>

#include <xgrad/core/blas.hpp>
#include <xgrad/core/blas_skinny_kernels.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/memory.hpp>
#include <xgrad/core/npy.hpp>
#include <xgrad/core/rng.hpp>
#include <xgrad/core/tensor.hpp>
#include <xgrad/core/threading.hpp>
#include "tests/test_util.hpp"
#include "xgrad/core/simd_kernels.hpp"

namespace tt = boost::test_tools;
namespace fs = std::filesystem;
using namespace xgrad;
using xgrad::test::message_contains;
using xgrad::test::message_has;

namespace {
// Fresh scratch directory per test, removed afterwards.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("xgrad_test_core_" + std::to_string(Rng(std::random_device{}()).next_u64()));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(shapes)

BOOST_AUTO_TEST_CASE(shape_printing) {
  BOOST_TEST(shape_str(Shape{32, 96, 55, 55}) == "(32, 96, 55, 55)");
  BOOST_TEST(shape_str(Shape{}) == "()");
  BOOST_TEST(shape_str(Shape{7}) == "(7,)");
  Tensor t = zeros({2, 3});
  BOOST_TEST(shape_str(t.shape()) == "(2, 3)");
}

BOOST_AUTO_TEST_CASE(element_counts) {
  BOOST_TEST(numel(Shape{2, 3, 4}) == 24u);
  BOOST_TEST(numel(Shape{}) == 1u);
  BOOST_TEST(numel(Shape{5, 0, 2}) == 0u);
}

BOOST_AUTO_TEST_CASE(checked_element_counts_detect_overflow) {
  BOOST_TEST(checked_numel(Shape{2, 3, 4}).value() == 24u);
  BOOST_TEST(checked_numel(Shape{}).value() == 1u);
  const std::size_t half = std::size_t(1) << (8 * sizeof(std::size_t) / 2);  // 2^32 on 64-bit
  BOOST_TEST(checked_numel(Shape{half / 2, half - 1}).has_value());
  BOOST_TEST(!checked_numel(Shape{half, half}).has_value());
  BOOST_TEST(!checked_numel(Shape{3, half, half / 2}).has_value());
}

BOOST_AUTO_TEST_CASE(check_throws_error_with_message) {
  BOOST_CHECK_NO_THROW(XGRAD_CHECK(true, "never"));
  BOOST_CHECK_EXCEPTION(XGRAD_CHECK(false, "op: size must be >= 1, got ", -3), Error,
                        [](const Error& e) { return message_contains(e, "size must be >= 1, got -3"); });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(npy)

BOOST_AUTO_TEST_CASE(round_trip_all_dtypes_bit_exact) {
  TempDir dir;
  Rng rng(1);
  Tensor f = empty({3, 4, 5});
  rng.fill_normal(f, 0, 1);
  save_npy((dir.path / "f.npy").string(), f);
  Tensor f2 = load_npy<float>((dir.path / "f.npy").string());
  BOOST_TEST(f2.shape() == f.shape());
  BOOST_TEST(std::memcmp(f.data(), f2.data(), f.size() * sizeof(float)) == 0);

  xt::xarray<double> d = {{1.5, -2.25}, {1e-300, 3e200}};
  save_npy((dir.path / "d.npy").string(), d);
  BOOST_TEST(load_npy<double>((dir.path / "d.npy").string()) == d);

  xt::xarray<std::int64_t> i = {4, -1, 9};
  save_npy((dir.path / "i.npy").string(), i);
  BOOST_TEST(load_npy<std::int64_t>((dir.path / "i.npy").string()) == i);
  BOOST_TEST(read_npy_header((dir.path / "i.npy").string()).dtype == "<i8");

  xt::xarray<float> scalar = full<float>({}, 2.5f);
  save_npy((dir.path / "s.npy").string(), scalar);
  auto s2 = load_npy<float>((dir.path / "s.npy").string());
  BOOST_TEST(s2.dimension() == 0u);
  BOOST_TEST(s2() == 2.5f);
}

BOOST_AUTO_TEST_CASE(header_is_64_byte_aligned) {
  TempDir dir;
  save_npy((dir.path / "a.npy").string(), Tensor(zeros({2, 2})));
  BOOST_TEST(fs::file_size(dir.path / "a.npy") % 16 == 0u);
  BOOST_TEST((fs::file_size(dir.path / "a.npy") - 16) % 64 == 0u);
}

BOOST_AUTO_TEST_CASE(wrong_dtype_is_reported) {
  TempDir dir;
  const auto path = (dir.path / "d.npy").string();
  save_npy(path, xt::xarray<double>({1.0, 2.0}));
  BOOST_CHECK_EXCEPTION(load_npy<float>(path), Error, [&](const Error& e) {
    return message_contains(e, path) && message_contains(e, "'<f8'") && message_contains(e, "'<f4'");
  });
}

BOOST_AUTO_TEST_CASE(truncated_file_is_reported) {
  TempDir dir;
  const auto path = (dir.path / "t.npy").string();
  save_npy(path, Tensor(zeros({10, 10})));
  fs::resize_file(path, fs::file_size(path) - 7);
  BOOST_CHECK_EXCEPTION(load_npy<float>(path), Error,
                        [](const Error& e) { return message_contains(e, "truncated") && message_contains(e, "(10, 10)"); });
  fs::resize_file(path, 30);
  BOOST_CHECK_EXCEPTION(load_npy<float>(path), Error, [](const Error& e) { return message_contains(e, "truncated"); });
}

BOOST_AUTO_TEST_CASE(missing_and_malformed_files_are_reported) {
  TempDir dir;
  BOOST_CHECK_EXCEPTION(load_npy<float>((dir.path / "absent.npy").string()), Error,
                        [](const Error& e) { return message_contains(e, "cannot open"); });
  const auto path = (dir.path / "junk.npy").string();
  std::ofstream(path) << "this is not numpy data at all";
  BOOST_CHECK_EXCEPTION(load_npy<float>(path), Error, [](const Error& e) { return message_contains(e, "bad magic"); });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(rng)

BOOST_AUTO_TEST_CASE(same_seed_same_numbers) {
  Rng a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const auto x = a.next_u64();
    BOOST_TEST(x == b.next_u64());
    differs = differs || x != c.next_u64();
  }
  BOOST_TEST(differs);
}

BOOST_AUTO_TEST_CASE(distributions_have_the_right_moments) {
  Rng rng(7);
  const int n = 200000;
  double sum = 0, sq = 0, umin = 1, umax = 0;
  for (int i = 0; i < n; ++i) {
    const double v = rng.normal(1.0, 2.0);
    sum += v;
    sq += v * v;
    const double u = rng.uniform(-1, 3);
    umin = std::min(umin, u);
    umax = std::max(umax, u);
  }
  const double mean = sum / n, var = sq / n - mean * mean;
  BOOST_TEST(mean == 1.0, tt::tolerance(0.02));
  BOOST_TEST(var == 4.0, tt::tolerance(0.02));
  BOOST_TEST(umin >= -1.0);
  BOOST_TEST(umax < 3.0);
  for (int i = 0; i < 1000; ++i) BOOST_TEST(rng.below(7) < 7u);
  BOOST_CHECK_THROW(rng.below(0), Error);
}

BOOST_AUTO_TEST_CASE(kaiming_and_xavier_scales) {
  Rng rng(3);
  Tensor w = empty({256, 64, 3, 3});  // fan_in 576, fan_out 2304
  BOOST_TEST(fan_in(w) == 576u);
  BOOST_TEST(fan_out(w) == 2304u);
  kaiming_normal(w, rng);
  double sq = 0;
  for (float v : w) sq += double(v) * v;
  BOOST_TEST(std::sqrt(sq / w.size()) == std::sqrt(2.0 / 576), tt::tolerance(0.02));
  xavier_uniform(w, rng);
  const double bound = std::sqrt(6.0 / (576 + 2304));
  float largest = 0.0f;
  for (float v : w) largest = std::max(largest, std::abs(v));
  BOOST_TEST(largest <= bound);
  BOOST_TEST(largest > 0.9 * bound);
  Tensor v1 = empty({5});
  BOOST_CHECK_THROW(fan_in(v1), Error);
}

BOOST_AUTO_TEST_CASE(manual_seed_resets_the_global_generator) {
  manual_seed(5);
  const auto a = global_rng().next_u64();
  manual_seed(5);
  BOOST_TEST(global_rng().next_u64() == a);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(threading)

BOOST_AUTO_TEST_CASE(set_and_get) {
  set_num_threads(1);
  BOOST_TEST(get_num_threads() == 1);
  set_num_threads(2);
  BOOST_TEST(get_num_threads() == 2);
  BOOST_CHECK_EXCEPTION(set_num_threads(0), Error, [](const Error& e) { return message_contains(e, "got 0"); });
}

BOOST_AUTO_TEST_SUITE_END()

// copy_run and add_run (the short-run moves of im2col, col2im and the padded planes): every
// length around the vector widths, at every float offset of a cache line's first 16 bytes, write
// exactly dst[0, n) with the scalar result and touch nothing beside it.
BOOST_AUTO_TEST_SUITE(simd_runs)

BOOST_AUTO_TEST_CASE(copy_and_add_runs_write_exactly_their_n_floats) {
  constexpr Index kGuard = 24;
  const float guard = -7.25f;
  for (Index n = 0; n <= 40; ++n) {
    for (Index offset = 0; offset < 4; ++offset) {
      std::vector<float> src(static_cast<std::size_t>(n + 2 * kGuard + offset)), dst(src.size()), expect(src.size());
      for (std::size_t i = 0; i < src.size(); ++i) src[i] = 0.5f + static_cast<float>(i);
      for (int add = 0; add < 2; ++add) {
        for (std::size_t i = 0; i < dst.size(); ++i) dst[i] = expect[i] = guard + (add ? 0.25f * static_cast<float>(i) : 0.0f);
        float* d = dst.data() + kGuard + offset;
        const float* s = src.data() + kGuard;  // src and dst at different alignments
        for (Index i = 0; i < n; ++i) {
          float& e = expect[static_cast<std::size_t>(kGuard + offset + i)];
          e = add ? e + s[i] : s[i];
        }
        if (add) {
          add_run(s, d, n);
        } else {
          copy_run(s, d, n);
        }
        BOOST_TEST_INFO("n = " << n << ", dst offset " << offset << (add ? ", add_run" : ", copy_run"));
        BOOST_TEST(dst == expect, tt::per_element());
      }
    }
  }
}

#if defined(__AVX2__)
// store_first (the partial vectors of the direct convolution and pooling kernels): the first
// `count` lanes, bit for bit (NaN payloads included: pooling stores int32 indices through it),
// and nothing else.
BOOST_AUTO_TEST_CASE(store_first_writes_exactly_the_first_lanes) {
  const std::uint32_t lanes[8] = {0x3f800000u, 0x7fc00123u, 0x00000001u, 0x80000000u,
                                  0xff800000u, 0x12345678u, 0x7f7fffffu, 0xdeadbeefu};
  __m256 v;
  std::memcpy(&v, lanes, sizeof lanes);
  for (Index count = 1; count <= 8; ++count) {
    for (Index offset = 0; offset < 4; ++offset) {
      std::uint32_t out[24], expect[24];
      for (std::uint32_t i = 0; i < 24; ++i) out[i] = expect[i] = 0xa5a5a500u + i;
      for (Index i = 0; i < count; ++i) expect[8 + offset + i] = lanes[i];
      store_first(reinterpret_cast<float*>(out + 8 + offset), v, count);
      BOOST_TEST_INFO("count = " << count << ", offset " << offset);
      BOOST_TEST(std::vector<std::uint32_t>(out, out + 24) == std::vector<std::uint32_t>(expect, expect + 24),
                 tt::per_element());
    }
  }
}
#endif

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(blas)

BOOST_AUTO_TEST_CASE(gemm_matches_naive_for_every_transpose) {
  Rng rng(11);
  const std::size_t m = 7, n = 5, k = 9;
  for (int ta = 0; ta < 2; ++ta) {
    for (int tb = 0; tb < 2; ++tb) {
      Tensor a = empty(ta ? Shape{k, m} : Shape{m, k});
      Tensor b = empty(tb ? Shape{n, k} : Shape{k, n});
      Tensor c = empty({m, n});
      rng.fill_normal(a, 0, 1);
      rng.fill_normal(b, 0, 1);
      rng.fill_normal(c, 0, 1);
      Tensor c0 = c;
      gemm(ta, tb, m, n, k, 0.5f, a.data(), b.data(), 2.0f, c.data());
      for (std::size_t i = 0; i < m; ++i) {
        for (std::size_t j = 0; j < n; ++j) {
          double ref = 2.0 * c0(i, j);
          for (std::size_t p = 0; p < k; ++p) ref += 0.5 * (ta ? a(p, i) : a(i, p)) * (tb ? b(j, p) : b(p, j));
          BOOST_TEST(c(i, j) == ref, tt::tolerance(1e-4));
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(gemm_serial_reads_and_writes_only_its_blocks_of_larger_buffers) {
  // A, B and C are blocks (at row 1, column 2) of larger row-major buffers with rows of 20.
  Rng rng(13);
  const std::size_t m = 6, n = 4, k = 5, ld = 20, rows = 12, first = ld + 2;
  for (int ta = 0; ta < 2; ++ta) {
    for (int tb = 0; tb < 2; ++tb) {
      std::vector<double> a(rows * ld), b(rows * ld), c(rows * ld);
      for (auto* v : {&a, &b, &c})
        for (double& x : *v) x = static_cast<double>(rng.next_u64() % 17) - 8.0;
      const std::vector<double> c0 = c;
      gemm_serial(ta, tb, m, n, k, 0.5, a.data() + first, ld, b.data() + first, ld, 2.0, c.data() + first, ld);
      for (std::size_t r = 0; r < rows; ++r) {
        for (std::size_t col = 0; col < ld; ++col) {
          const std::size_t at = r * ld + col;
          double ref = c0[at];  // outside the block of C: untouched
          if (r >= 1 && r < 1 + m && col >= 2 && col < 2 + n) {
            const std::size_t i = r - 1, j = col - 2;
            ref = 2.0 * c0[at];
            for (std::size_t p = 0; p < k; ++p)
              ref += 0.5 * a[first + (ta ? p * ld + i : i * ld + p)] * b[first + (tb ? j * ld + p : p * ld + j)];
          }
          BOOST_TEST_REQUIRE(c[at] == ref);  // small integers: exact
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(large_gemm_is_split_and_identical_at_any_thread_count) {
  // Large enough to be split into blocks, along columns and along rows.
  Rng rng(12);
  for (const auto& mnk : {std::array<std::size_t, 3>{40, 1000, 70}, std::array<std::size_t, 3>{300, 90, 50}}) {
    const std::size_t m = mnk[0], n = mnk[1], k = mnk[2];
    for (int ta = 0; ta < 2; ++ta) {
      for (int tb = 0; tb < 2; ++tb) {
        Tensor a = empty(ta ? Shape{k, m} : Shape{m, k});
        Tensor b = empty(tb ? Shape{n, k} : Shape{k, n});
        rng.fill_normal(a, 0, 1);
        rng.fill_normal(b, 0, 1);
        Tensor c1 = zeros({m, n}), c2 = zeros({m, n});
        set_num_threads(1);
        gemm(ta, tb, m, n, k, 1.0f, a.data(), b.data(), 0.0f, c1.data());
        set_num_threads(2);
        gemm(ta, tb, m, n, k, 1.0f, a.data(), b.data(), 0.0f, c2.data());
        BOOST_TEST(std::memcmp(c1.data(), c2.data(), c1.size() * sizeof(float)) == 0);
        for (std::size_t i = 0; i < m; i += 7) {
          for (std::size_t j = 0; j < n; j += 13) {
            double ref = 0.0;
            for (std::size_t p = 0; p < k; ++p) ref += double(ta ? a(p, i) : a(i, p)) * (tb ? b(j, p) : b(p, j));
            BOOST_TEST_REQUIRE(std::abs(c2(i, j) - ref) <= 1e-4 * (1.0 + std::abs(ref)));
          }
        }
      }
    }
  }
}

// The kernels gemm() takes for a small batch against a large weight (blas_skinny_kernels.hpp):
// every flag combination they serve, with ragged rows and columns (rows of A and B in register
// tiles of 4, lanes of 16 or 8, tiles of 16 rows of B), alpha and beta, and C full of NaN where
// beta is 0 (BLAS does not read it then). Each element is held to a double sum within the
// worst-case bound of a float sum of k products, (k + 8) u sum |alpha a b| + |beta c|, and the
// results must be the same bits at 1 and 2 threads.
BOOST_AUTO_TEST_CASE(skinny_gemm_matches_double_reference_and_is_identical_at_any_thread_count) {
  struct Case {
    bool ta, tb;
    std::size_t m, n, k;
  };
  const std::vector<Case> cases = {
      {false, true, 16, 1030, 1021},  // y = x W^T: full tiles of A, ragged rows of B and k
      {false, true, 3, 257, 4099},    // fewer rows than a tile, k past 4096
      {false, false, 16, 1031, 1033}, // dx = dy W: a ragged strip and tile
      {false, false, 5, 4100, 300},   // rows below a register pass, several panels
      {true, false, 1037, 1029, 16},  // dW = dy^T x: k at its largest, ragged rows and columns
      {true, false, 1026, 1027, 1},   // a single product per element
  };
  Rng rng(29);
  const float alpha = 0.75f;
  for (const Case& t : cases) {
    BOOST_TEST_CONTEXT("ta " << t.ta << " tb " << t.tb << " m " << t.m << " n " << t.n << " k " << t.k) {
      BOOST_TEST_REQUIRE(detail::takes_skinny_gemm(t.ta, t.tb, t.m, t.n, t.k));
      Tensor a = empty(t.ta ? Shape{t.k, t.m} : Shape{t.m, t.k});
      Tensor b = empty(t.tb ? Shape{t.n, t.k} : Shape{t.k, t.n});
      rng.fill_normal(a, 0, 1);
      rng.fill_normal(b, 0, 1);
      Tensor c0 = empty({t.m, t.n});
      rng.fill_normal(c0, 0, 1);
      for (const float beta : {0.0f, 2.0f}) {
        Tensor c1 = c0, c2 = c0;
        if (beta == 0.0f) {
          c1.fill(std::nanf(""));
          c2.fill(std::nanf(""));
        }
        set_num_threads(1);
        gemm(t.ta, t.tb, t.m, t.n, t.k, alpha, a.data(), b.data(), beta, c1.data());
        set_num_threads(2);
        gemm(t.ta, t.tb, t.m, t.n, t.k, alpha, a.data(), b.data(), beta, c2.data());
        BOOST_TEST(std::memcmp(c1.data(), c2.data(), c1.size() * sizeof(float)) == 0);
        const double u = std::ldexp(1.0, -24);
        std::size_t bad = 0;
        for (std::size_t i = 0; i < t.m; ++i) {
          for (std::size_t j = 0; j < t.n; ++j) {
            double ref = beta * double(c0(i, j)), bound = std::abs(ref);
            for (std::size_t p = 0; p < t.k; ++p) {
              const double term = double(alpha) * (t.ta ? a(p, i) : a(i, p)) * (t.tb ? b(j, p) : b(p, j));
              ref += term;
              bound += std::abs(term);
            }
            if (!(std::abs(c2(i, j) - ref) <= double(t.k + 8) * u * bound)) ++bad;
          }
        }
        BOOST_TEST(bad == 0u, bad << " elements beyond the bound (beta " << beta << ")");
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(skinny_gemm_takes_only_small_batches_against_large_operands) {
  BOOST_TEST(detail::takes_skinny_gemm(false, true, 16, 4096, 9216));   // AlexNet's FC1 forward
  BOOST_TEST(detail::takes_skinny_gemm(false, false, 16, 9216, 4096));  // its input gradient
  BOOST_TEST(detail::takes_skinny_gemm(true, false, 4096, 9216, 16));   // its weight gradient
  BOOST_TEST(!detail::takes_skinny_gemm(false, true, 17, 4096, 9216));  // a larger batch
  BOOST_TEST(!detail::takes_skinny_gemm(true, false, 4096, 9216, 17));
  BOOST_TEST(!detail::takes_skinny_gemm(false, true, 16, 1000, 1000));  // a weight below 2^20
  BOOST_TEST(!detail::takes_skinny_gemm(true, true, 16, 4096, 9216));   // no kernel for both transposed
  BOOST_TEST(!detail::takes_skinny_gemm(true, false, 4096, 9216, 0));   // k = 0: BLAS's scaling
}

// OpenBLAS's choice of kernels (blas_kernels()). The case for a user's OPENBLAS_CORETYPE runs
// as its own ctest entry, test_core_blas_coretype, with OPENBLAS_CORETYPE=Prescott.
bool coretype_unset() { return std::getenv("OPENBLAS_CORETYPE") == nullptr; }
bool coretype_set() { return !coretype_unset(); }

extern "C" char* openblas_get_corename(void);

BOOST_AUTO_TEST_CASE(kernels_are_not_the_generic_fallback_when_the_cpu_has_wider_vectors,
                     *boost::unit_test::precondition([](boost::unit_test::test_unit_id) { return coretype_unset(); })) {
  float a = 2.0f, b = 3.0f, c = 0.0f;
  gemm(false, false, 1, 1, 1, 1.0f, &a, &b, 0.0f, &c);  // the first BLAS call, if none came before
  BOOST_TEST(c == 6.0f);
  const BlasKernels& k = blas_kernels();
  BOOST_TEST_MESSAGE("OpenBLAS kernels: " << k.core << " (OpenBLAS chose " << k.detected << "; " << k.note << ")");
  BOOST_TEST(k.core == std::string(openblas_get_corename()));
  BOOST_TEST(!k.note.empty());
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx")) {
    // Prescott is OpenBLAS's fallback for CPUs it does not know; with AVX there is better.
    BOOST_TEST(strcasecmp(k.core.c_str(), "Prescott") != 0);
    BOOST_TEST(k.replaced == (strcasecmp(k.detected.c_str(), "Prescott") == 0));
  }
  BOOST_TEST(&blas_kernels() == &k);  // chosen once
  BOOST_TEST(std::getenv("OPENBLAS_CORETYPE") == nullptr);  // not left set for child processes
}

BOOST_AUTO_TEST_CASE(kernels_set_by_the_user_are_kept,
                     *boost::unit_test::precondition([](boost::unit_test::test_unit_id) { return coretype_set(); })) {
  const BlasKernels& k = blas_kernels();
  const std::string forced = std::getenv("OPENBLAS_CORETYPE");
  BOOST_TEST(!k.replaced);
  BOOST_TEST(k.core == k.detected);
  BOOST_TEST(strcasecmp(k.core.c_str(), forced.c_str()) == 0);
  BOOST_TEST(k.note.find("OPENBLAS_CORETYPE=" + forced) != std::string::npos);
  float a = 2.0f, b = 3.0f, c = 1.0f;
  gemm(false, false, 1, 1, 1, 1.0f, &a, &b, 1.0f, &c);
  BOOST_TEST(c == 7.0f);
  BOOST_TEST(std::string(openblas_get_corename()) == k.core);  // still the user's after a BLAS call
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(memory)

long minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

// Steps that allocate, write and free tensors of several sizes (2-12 MiB, as a training step's
// activations and gradients), three of them kept until the next step: once eight steps have
// warmed the heap up (and its holes have settled), eight more take (nearly) no new page from
// the OS when freed memory is retained. With glibc's defaults, the blocks above its mapping
// threshold are mapped for each allocation and unmapped when freed: thousands of faults a step.
BOOST_AUTO_TEST_CASE(retained_memory_is_reused_without_page_faults) {
  const xgrad::MemoryRetention r = xgrad::retain_freed_memory();
  if (!r.applied) {
    BOOST_TEST_MESSAGE("memory retention not applied: " << r.reason);
    BOOST_TEST(!r.reason.empty());
    return;
  }
  BOOST_TEST(r.largest_reused_block >= (std::size_t{12} << 20));
  BOOST_TEST(xgrad::retain_freed_memory().largest_reused_block == r.largest_reused_block);  // once
  const std::size_t mib = (std::size_t{1} << 20) / sizeof(float);
  const std::size_t sizes[] = {12 * mib, 3 * mib, 8 * mib, 2 * mib, 6 * mib, 4 * mib};
  std::vector<xgrad::Tensor> kept;
  double sum = 0.0;
  auto step = [&] {
    std::vector<xgrad::Tensor> live;
    for (std::size_t n : sizes) {
      live.push_back(xgrad::empty({n}));
      std::fill(live.back().begin(), live.back().end(), 1.0f);
      sum += live.back()(n - 1);
    }
    kept.clear();  // the last step's survivors go now, as the tape's would
    for (std::size_t i = 0; i < live.size(); i += 2) kept.push_back(std::move(live[i]));
  };
  for (int i = 0; i < 8; ++i) step();
  const long before = minor_faults();
  for (int i = 0; i < 8; ++i) step();
  const long faults = minor_faults() - before;
  BOOST_TEST(sum == 16.0 * 6);
  // Pages written in the 8 steps; the heap's holes can still make it grow now and then (glibc's
  // aligned allocations leave small in-use chunks beside each block), so the bound is one fault
  // per 16 pages written, not zero. Without retention the steps take thousands apiece.
  const long pages = static_cast<long>(8 * 35 * mib * sizeof(float) / 4096);
  BOOST_TEST(faults < pages / 16, faults << " minor faults in 8 steps writing " << pages << " pages");
}

BOOST_AUTO_TEST_SUITE_END()
