#pragma once
// Drives one Forwarder::forward() to completion for the forwarder's tests.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "agent/dns/wire.hpp"
#include "agent/upstream/forwarder.hpp"

namespace elasticdns::testing {

/// Forwards `query` and runs `io` until the reply (or failure) arrives, at most `limit`.
/// nullopt: no callback within `limit`.
inline std::optional<std::vector<uint8_t>> forwardAndWait(boost::asio::io_context& io,
                                                          agent::Forwarder& f,
                                                          std::span<const uint8_t> query,
                                                          std::chrono::milliseconds limit) {
  std::optional<std::vector<uint8_t>> result;
  agent::wire::Query parsed;
  EXPECT_EQ(agent::wire::parseQuery(query, parsed), agent::wire::ParseStatus::kOk);
  f.forward(parsed, query, [&](std::span<const uint8_t> r) {
    result.emplace(r.begin(), r.end());
    io.stop();
  });
  io.restart();
  io.run_for(limit);
  return result;
}

}  // namespace elasticdns::testing
