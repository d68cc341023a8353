#pragma once
// A value or an error, for code paths that must not throw (the query path, validation).
#include <string>
#include <utility>
#include <variant>

namespace elasticdns {

/// Why an input was rejected: the field (a JSON-pointer-like path, e.g. "containers/3/address")
/// and a human-readable reason.
struct Error {
  std::string field;
  std::string reason;
  std::string message() const { return field.empty() ? reason : field + ": " + reason; }
};

template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const Error& error() const { return std::get<1>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Error> v_;
};

}  // namespace elasticdns
