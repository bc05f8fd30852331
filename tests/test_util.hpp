#pragma once
// Helpers shared by the test suites.
#include <initializer_list>
#include <string>

#include <boost/test/unit_test.hpp>

#include <xgrad/core/error.hpp>

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

}  // namespace xgrad::test
