#include "agent/upstream/answer_cache.hpp"

#include <algorithm>
#include <cstring>

#include <boost/endian/conversion.hpp>

namespace elasticdns::agent {
namespace {

constexpr uint32_t kMaxTtl = 0x7FFF'FFFF;  // RFC 2181 8: larger values mean zero
constexpr size_t kSoaFixedSize = 20;       // serial, refresh, retry, expire, minimum
using boost::endian::load_big_u16;
using boost::endian::load_big_u32;
using boost::endian::store_big_u16;
using boost::endian::store_big_u32;
using wire::forEachRecord;
using wire::parseQuestion;
using wire::Record;

uint32_t effectiveTtl(uint32_t ttl) {
  return ttl > kMaxTtl ? 0 : ttl;
}

}  // namespace

std::optional<std::chrono::seconds> cacheLifetime(std::span<const uint8_t> reply,
                                                  std::chrono::seconds max_ttl,
                                                  std::chrono::seconds negative_ttl_cap) {
  if (reply.size() < wire::kHeaderSize) return std::nullopt;
  const uint16_t flags = load_big_u16(&reply[2]);
  if (!(flags & wire::kFlagQr) || (flags & wire::kFlagTc)) return std::nullopt;
  uint8_t rcode = reply[3] & 0x0F;
  auto q = parseQuestion(reply);
  if (!q) return std::nullopt;
  uint16_t ancount = load_big_u16(&reply[6]);
  std::optional<uint32_t> ttl;
  bool ok = true;
  if (rcode == wire::kNoError && ancount > 0) {
    ok = forEachRecord(reply, *q, [&](const Record& rr) {
      if (rr.section != 1) return false;
      ttl = std::min(ttl.value_or(kMaxTtl), effectiveTtl(rr.ttl));
      return true;
    });
    if (ttl) ttl = std::min<uint32_t>(*ttl, static_cast<uint32_t>(max_ttl.count()));
  } else if (rcode == wire::kNoError || rcode == wire::kNxDomain) {
    // RFC 2308 5: the negative TTL is the SOA record's TTL capped by its MINIMUM field; a CNAME
    // chain in the answer (RFC 2308 2.1) must not outlive its own TTL either.
    std::optional<uint32_t> chain;
    ok = forEachRecord(reply, *q, [&](const Record& rr) {
      if (rr.section == 1) chain = std::min(chain.value_or(kMaxTtl), effectiveTtl(rr.ttl));
      if (rr.section != 2 || rr.type != wire::kTypeSoa) return rr.section <= 2;
      if (rr.rdlength < kSoaFixedSize + 2) return true;
      uint32_t minimum = load_big_u32(&reply[rr.rdata_offset + rr.rdlength - 4]);
      ttl = std::min(effectiveTtl(rr.ttl), effectiveTtl(minimum));
      return false;
    });
    if (ttl && chain) ttl = std::min(*ttl, *chain);
    if (ttl) ttl = std::min<uint32_t>(*ttl, static_cast<uint32_t>(negative_ttl_cap.count()));
  }
  if (!ok || !ttl || *ttl == 0) return std::nullopt;
  return std::chrono::seconds(*ttl);
}

AnswerCache::AnswerCache(size_t max_entries, std::chrono::seconds max_ttl,
                         std::chrono::seconds negative_ttl_cap)
    : max_entries_(max_entries), max_ttl_(max_ttl), negative_ttl_cap_(negative_ttl_cap) {}

std::string AnswerCache::keyOf(const wire::Question& question, bool edns, bool dnssec_ok) {
  std::string key = question.name;
  key.push_back(static_cast<char>(question.type >> 8));
  key.push_back(static_cast<char>(question.type));
  key.push_back(static_cast<char>(question.qclass >> 8));
  key.push_back(static_cast<char>(question.qclass));
  key.push_back(static_cast<char>((edns ? 1 : 0) | (dnssec_ok ? 2 : 0)));
  return key;
}

std::optional<std::vector<uint8_t>> AnswerCache::lookup(const std::string& key,
                                                        std::span<const uint8_t> query,
                                                        const wire::Question& question,
                                                        Clock::time_point now) {
  std::vector<uint8_t> out;
  std::chrono::seconds age{0}, lifetime{0};
  {
    std::lock_guard lock(mu_);
    auto it = index_.find(key);
    if (it == index_.end()) return std::nullopt;
    const Entry& e = *it->second;
    if (now >= e.inserted + e.lifetime) {
      lru_.erase(it->second);
      index_.erase(it);
      return std::nullopt;
    }
    lru_.splice(lru_.begin(), lru_, it->second);
    age = std::chrono::duration_cast<std::chrono::seconds>(
        std::max(now - e.inserted, Clock::duration::zero()));
    lifetime = e.lifetime;
    out = e.wire;
  }
  auto rq = parseQuestion(out);
  if (!rq) return std::nullopt;  // cannot happen: it was parsed before it was stored
  const uint32_t remaining = static_cast<uint32_t>((lifetime - age).count());
  const uint32_t aged = static_cast<uint32_t>(age.count());
  std::span<uint8_t> w(out);
  forEachRecord(out, *rq, [&](const Record& rr) {
    if (rr.type == wire::kTypeOpt) return true;  // its TTL field holds EDNS flags, not a TTL
    uint32_t ttl = effectiveTtl(rr.ttl);
    ttl = ttl > aged ? ttl - aged : 0;
    store_big_u32(&w[rr.ttl_offset], std::min(ttl, remaining));
    return true;
  });
  adaptReply(w, query, question);
  return out;
}

void adaptReply(std::span<uint8_t> w, std::span<const uint8_t> query,
                const wire::Question& question) {
  if (w.size() < wire::kHeaderSize || query.size() < wire::kHeaderSize) return;
  w[0] = query[0];
  w[1] = query[1];
  store_big_u16(&w[2], static_cast<uint16_t>((load_big_u16(&w[2]) & ~wire::kFlagRd) |
                                             (load_big_u16(&query[2]) & wire::kFlagRd)));
  auto rq = parseQuestion(w);
  size_t name_len = question.end - 4 - wire::kHeaderSize;
  if (rq && rq->end == question.end && rq->name.size() == name_len &&
      question.name.size() == name_len && query.size() >= question.end)
    std::memcpy(&w[wire::kHeaderSize], &query[wire::kHeaderSize], name_len);
}

bool AnswerCache::insert(const std::string& key, std::span<const uint8_t> reply,
                         Clock::time_point now) {
  if (max_entries_ == 0) return false;
  auto lifetime = cacheLifetime(reply, max_ttl_, negative_ttl_cap_);
  if (!lifetime) return false;
  std::lock_guard lock(mu_);
  if (auto it = index_.find(key); it != index_.end()) {
    lru_.erase(it->second);
    index_.erase(it);
  }
  while (lru_.size() >= max_entries_) {
    index_.erase(lru_.back().key);
    lru_.pop_back();
  }
  lru_.push_front(Entry{key, std::vector<uint8_t>(reply.begin(), reply.end()), now, *lifetime});
  index_.emplace(key, lru_.begin());
  return true;
}

size_t AnswerCache::size() const {
  std::lock_guard lock(mu_);
  return lru_.size();
}

}  // namespace elasticdns::agent
