// Fuzz target: bytes an upstream resolver may send back. Drives every read the forwarder and its
// cache make of a reply: question parse, record walk, cache lifetime (RFC 2308), and a cache
// insert + lookup (TTL ageing rewrites the copy in place).
#include <chrono>
#include <cstdint>
#include <span>

#include "agent/upstream/answer_cache.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace elasticdns::agent;
  using namespace std::chrono_literals;
  std::span<const uint8_t> msg(data, size);
  cacheLifetime(msg, 3600s, 300s);
  if (auto q = wire::parseQuestion(msg)) {
    wire::forEachRecord(msg, *q, [](const wire::Record&) { return true; });
    const std::string key = AnswerCache::keyOf(*q, false, false);
    AnswerCache cache(4, 3600s, 300s);
    auto t0 = AnswerCache::Clock::time_point{} + 1h;
    if (cache.insert(key, msg, t0)) {
      auto hit = cache.lookup(key, msg, *q, t0);
      if (!hit || hit->size() != size) __builtin_trap();  // a fresh entry hits, same size
      cache.lookup(key, msg, *q, t0 + 1s);                // ageing (or expiry)
    }
  }
  return 0;
}
