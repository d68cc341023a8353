#include "agent/util/whole_number.hpp"

namespace elasticdns::agent {

Result<uint32_t> parseWholeNumber(const std::string& text, const std::string& field, uint32_t min,
                                  uint32_t max) {
  if (text.empty() || text.size() > 10 || text.find_first_not_of("0123456789") != std::string::npos)
    return Error{field, "not a whole number: '" + text + "'"};
  unsigned long long x = std::stoull(text);
  if (x < min || x > max)
    return Error{field,
                 "out of range " + std::to_string(min) + ".." + std::to_string(max) + ": " + text};
  return static_cast<uint32_t>(x);
}

}  // namespace elasticdns::agent
