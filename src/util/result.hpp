#pragma once
// Result<T>: a value or an Error (std::expected is C++23; this is the subset we use).
// Result<T, E> carries another error type E with `code` and `message` members (the client's
// ClientError adds the HTTP status).

#include <cassert>
#include <utility>
#include <variant>

#include "util/error.hpp"

namespace troupe {

namespace detail {
// What a default-constructed Result holds.
template <class E>
E no_result_error() {
  E e{};
  e.code = Errc::internal;
  e.message = "no result";
  return e;
}
}  // namespace detail

template <class T, class E = Error>
class [[nodiscard]] Result {
 public:
  // An error ("no result"): exists because asio's co_spawn needs default-constructible
  // results; a real Result always holds a value or a meaningful error.
  Result() : v_(std::in_place_index<1>, detail::no_result_error<E>()) {}
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(E error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  // Preconditions: ok() for value(), !ok() for error().
  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const E& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, E> v_;
};

// Result<void>: success or an error.
template <class E>
class [[nodiscard]] Result<void, E> {
 public:
  Result() = default;
  Result(E error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  bool ok() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  const E& error() const {
    assert(!ok_);
    return error_;
  }

 private:
  E error_;
  bool ok_ = true;
};

}  // namespace troupe
