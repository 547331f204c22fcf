// Result<T> and Error: how failures cross a layer's public API in mechscope.
// Inside a layer code may throw InputError; at the API boundary guard() turns every throw into
// an Error whose code is also the CLI's exit code (2 usage, 3 bad input file, 1 anything else).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace ms {

enum class ErrorCode : int {
  kInternal = 1,   // anything else: a bug, an I/O failure, out of memory
  kUsage = 2,      // the user called a command wrongly
  kBadInput = 3,   // an input file (model, tokenizer, job, database) is malformed or unsupported
};

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;  // what, where, and what to do
};

// Thrown inside a layer for bad input; guard() turns it into Error{kBadInput or kUsage}.
class InputError : public std::runtime_error {
 public:
  explicit InputError(std::string message, ErrorCode code = ErrorCode::kBadInput)
      : std::runtime_error(std::move(message)), m_code(code) {}
  ErrorCode code() const { return m_code; }

 private:
  ErrorCode m_code;
};

[[noreturn]] inline void fail_input(std::string message) { throw InputError(std::move(message)); }
[[noreturn]] inline void fail_usage(std::string message) {
  throw InputError(std::move(message), ErrorCode::kUsage);
}

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : m_value(std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Error error) : m_error(std::move(error)) {}  // NOLINT

  bool ok() const { return m_value.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return m_error; }
  T& value() & { check(); return *m_value; }
  const T& value() const& { check(); return *m_value; }
  T&& value() && { check(); return std::move(*m_value); }
  T* operator->() { check(); return &*m_value; }
  const T* operator->() const { check(); return &*m_value; }
  T& operator*() & { check(); return *m_value; }

 private:
  void check() const {
    if (!m_value) {
      std::fprintf(stderr, "mechscope: value() on a failed Result: %s\n", m_error.message.c_str());
      std::abort();
    }
  }
  std::optional<T> m_value;
  Error m_error;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : m_failed(true), m_error(std::move(error)) {}  // NOLINT
  bool ok() const { return !m_failed; }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return m_error; }

 private:
  bool m_failed = false;
  Error m_error;
};
using Status = Result<void>;

// Runs f and turns any exception into an Error. c10::Error (a std::exception) becomes kInternal
// unless it is an InputError. Use at every layer's public entry point.
template <class F>
auto guard(F&& f) -> Result<std::invoke_result_t<F>> {
  try {
    if constexpr (std::is_void_v<std::invoke_result_t<F>>) {
      f();
      return {};
    } else {
      return f();
    }
  } catch (const InputError& e) {
    return Error{e.code(), e.what()};
  } catch (const std::bad_alloc&) {
    return Error{ErrorCode::kInternal, "out of memory"};
  } catch (const std::exception& e) {
    return Error{ErrorCode::kInternal, e.what()};
  }
}

// Programmer errors: expression, file and line, then abort.
#define MS_ASSERT(cond)                                                                    \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      std::fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond);    \
      std::abort();                                                                        \
    }                                                                                      \
  } while (0)

}  // namespace ms
