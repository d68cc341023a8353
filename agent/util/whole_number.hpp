#pragma once
// Whole numbers of the agent's configuration text (ports, counts, limits).
#include <cstdint>
#include <string>

#include "elasticdns/result.hpp"

namespace elasticdns::agent {

/// `text` as a whole number from `min` to `max` (decimal digits only). The Error names `field`
/// ("containernet/listen_port") and says what was wrong.
Result<uint32_t> parseWholeNumber(const std::string& text, const std::string& field, uint32_t min,
                                  uint32_t max);

}  // namespace elasticdns::agent
