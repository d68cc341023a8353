#pragma once
// The forwarder's answer cache and the few DNS message reads it needs. Every read here is of
// untrusted bytes (an upstream's reply): each offset is checked against the message size before
// it is read, compression pointers are followed only backwards and at most kMaxPointerHops times.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace elasticdns::agent {

constexpr size_t kDnsHeaderSize = 12;       // RFC 1035 4.1.1
constexpr size_t kMaxNameWireLength = 255;  // RFC 1035 2.3.4
constexpr int kMaxPointerHops = 32;         // more than any legitimate name needs (≤ 127 labels)
constexpr uint16_t kTypeSoa = 6;            // RFC 1035 3.2.2
constexpr uint16_t kTypeOpt = 41;           // RFC 6891 6.1.1
constexpr uint8_t kRcodeNoError = 0;        // RFC 1035 4.1.1
constexpr uint8_t kRcodeServFail = 2;
constexpr uint8_t kRcodeNxDomain = 3;
constexpr uint8_t kRcodeRefused = 5;

/// The first question of a message and what follows it.
struct DnsQuestion {
  std::string name;  // uncompressed wire form, lowercased (ASCII), root label included
  uint16_t type = 0;
  uint16_t qclass = 0;
  size_t end = 0;  // offset just after the question
};

/// One resource record as found in a message (offsets into it).
struct RrRef {
  int section = 0;  // 1 answer, 2 authority, 3 additional
  uint16_t type = 0;
  uint16_t rrclass = 0;
  uint32_t ttl = 0;
  size_t ttl_offset = 0;
  size_t rdata_offset = 0;
  uint16_t rdlength = 0;
};

inline uint16_t readU16(std::span<const uint8_t> m, size_t at) {
  return static_cast<uint16_t>(m[at] << 8 | m[at + 1]);
}
inline uint32_t readU32(std::span<const uint8_t> m, size_t at) {
  return uint32_t{m[at]} << 24 | uint32_t{m[at + 1]} << 16 | uint32_t{m[at + 2]} << 8 | m[at + 3];
}
inline void writeU16(std::span<uint8_t> m, size_t at, uint16_t v) {
  m[at] = static_cast<uint8_t>(v >> 8);
  m[at + 1] = static_cast<uint8_t>(v);
}
inline void writeU32(std::span<uint8_t> m, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) m[at + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}

/// Parses the header and the first question (qdcount must be 1). nullopt when malformed.
std::optional<DnsQuestion> parseQuestion(std::span<const uint8_t> msg);

/// Walks every RR after the question, calling `fn` for each; stops early when `fn` returns
/// false. Returns false when the message is malformed (a record runs past the end).
bool forEachRecord(std::span<const uint8_t> msg, const DnsQuestion& q,
                   const std::function<bool(const RrRef&)>& fn);

/// EDNS(0) facts of a message: whether it has an OPT record and whether DO is set (RFC 3225).
struct EdnsFlags {
  bool present = false;
  bool dnssec_ok = false;
};
std::optional<EdnsFlags> ednsFlags(std::span<const uint8_t> msg, const DnsQuestion& q);

/// How long a reply may be cached (RFC 2308 for negative answers), or nullopt when it must not
/// be: truncated, SERVFAIL/REFUSED/other errors, negative without SOA, TTL 0, malformed.
std::optional<std::chrono::seconds> cacheLifetime(std::span<const uint8_t> reply,
                                                  std::chrono::seconds max_ttl,
                                                  std::chrono::seconds negative_ttl_cap);

/// A bounded LRU cache of upstream replies keyed by (lowercased qname, qtype, qclass, EDNS
/// present, DO bit). Thread-safe (one mutex; the forward path is not the authoritative hot path).
class AnswerCache {
 public:
  using Clock = std::chrono::steady_clock;

  AnswerCache(size_t max_entries, std::chrono::seconds max_ttl,
              std::chrono::seconds negative_ttl_cap);

  /// The cache key of a client query, or nullopt when the query is malformed.
  static std::optional<std::string> keyOf(std::span<const uint8_t> query);

  /// On a hit, a copy of the cached reply made for `query`: its ID and RD bit, its question
  /// name's spelling, every TTL aged by the time spent in the cache (and never above what is
  /// left of the entry's life). nullopt on a miss or an expired entry (which is dropped).
  std::optional<std::vector<uint8_t>> lookup(const std::string& key, std::span<const uint8_t> query,
                                             Clock::time_point now);

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
