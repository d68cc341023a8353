#pragma once
// The forwarder's answer cache: upstream replies keyed by their question, aged on the way out.
// Every read of a reply (untrusted bytes) goes through the DNS codec (dns/wire.hpp).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/dns/wire.hpp"

namespace elasticdns::agent {

/// How long a reply may be cached (RFC 2308 for negative answers), or nullopt when it must not
/// be: truncated, SERVFAIL/REFUSED/other errors, negative without SOA, TTL 0, malformed.
std::optional<std::chrono::seconds> cacheLifetime(std::span<const uint8_t> reply,
                                                  std::chrono::seconds max_ttl,
                                                  std::chrono::seconds negative_ttl_cap);

/// Makes `reply` (a reply to the same question) the reply to `query`, whose question is
/// `question`: its ID and RD bit, and its spelling of the question name (it may use 0x20 case
/// randomisation).
void adaptReply(std::span<uint8_t> reply, std::span<const uint8_t> query,
                const wire::Question& question);

/// A bounded LRU cache of upstream replies keyed by (lowercased qname, qtype, qclass, EDNS
/// present, DO bit). Thread-safe (one mutex; the forward path is not the authoritative hot path).
class AnswerCache {
 public:
  using Clock = std::chrono::steady_clock;

  AnswerCache(size_t max_entries, std::chrono::seconds max_ttl,
              std::chrono::seconds negative_ttl_cap);

  /// The cache key of a client query with `question` and the EDNS facts parseQuery() found.
  static std::string keyOf(const wire::Question& question, bool edns, bool dnssec_ok);

  /// On a hit, a copy of the cached reply made for `query` (whose question is `question`): its
  /// ID and RD bit, its question name's spelling, every TTL aged by the time spent in the cache
  /// (and never above what is left of the entry's life). nullopt on a miss or an expired entry
  /// (which is dropped).
  std::optional<std::vector<uint8_t>> lookup(const std::string& key, std::span<const uint8_t> query,
                                             const wire::Question& question, Clock::time_point now);

  /// Stores `reply` under `key` when cacheLifetime() allows; evicts the least recently used
  /// entry when full. Returns whether it was stored.
  bool insert(const std::string& key, std::span<const uint8_t> reply, Clock::time_point now);

  size_t size() const;

 private:
  struct Entry {
    std::string key;
    std::vector<uint8_t> wire;
    Clock::time_point inserted;
    std::chrono::seconds lifetime;
  };
  const size_t max_entries_;
  const std::chrono::seconds max_ttl_;
  const std::chrono::seconds negative_ttl_cap_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

}  // namespace elasticdns::agent
