#include "agent/upstream/answer_cache.hpp"

#include <algorithm>
#include <cstring>

namespace elasticdns::agent {
namespace {

constexpr uint32_t kMaxTtl = 0x7FFF'FFFF;  // RFC 2181 8: larger values mean zero
constexpr size_t kRrFixedSize = 10;        // type, class, ttl, rdlength (RFC 1035 4.1.3)
constexpr size_t kSoaFixedSize = 20;       // serial, refresh, retry, expire, minimum
constexpr uint8_t kFlagTc = 0x02;          // byte 2 of the header
constexpr uint8_t kFlagRd = 0x01;          // byte 2 of the header
constexpr uint8_t kFlagQr = 0x80;          // byte 2 of the header
constexpr uint32_t kEdnsDoBit = 0x8000;    // in the OPT record's TTL field, RFC 3225

uint8_t lower(uint8_t c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<uint8_t>(c + 32) : c;
}

// Reads a possibly compressed name at `pos` into `out` (lowercased wire form); returns the
// offset just after the name as it sits at `pos`.
std::optional<size_t> readName(std::span<const uint8_t> msg, size_t pos, std::string& out) {
  out.clear();
  std::optional<size_t> end;
  int hops = 0;
  while (true) {
    if (pos >= msg.size()) return std::nullopt;
    uint8_t len = msg[pos];
    if ((len & 0xC0) == 0xC0) {
      if (pos + 1 >= msg.size()) return std::nullopt;
      size_t target = size_t(len & 0x3F) << 8 | msg[pos + 1];
      if (target >= pos || ++hops > kMaxPointerHops) return std::nullopt;
      if (!end) end = pos + 2;
      pos = target;
      continue;
    }
    if (len & 0xC0) return std::nullopt;  // extended label types (RFC 6891 obsoleted them)
    if (pos + 1 + len > msg.size()) return std::nullopt;
    out.push_back(static_cast<char>(len));
    for (size_t i = 0; i < len; ++i) out.push_back(static_cast<char>(lower(msg[pos + 1 + i])));
    if (out.size() > kMaxNameWireLength) return std::nullopt;
    pos += 1 + len;
    if (len == 0) return end ? *end : pos;
  }
}

// Skips a name without following pointers; returns the offset after it.
std::optional<size_t> skipName(std::span<const uint8_t> msg, size_t pos) {
  size_t total = 0;
  while (true) {
    if (pos >= msg.size()) return std::nullopt;
    uint8_t len = msg[pos];
    if ((len & 0xC0) == 0xC0) {
      if (pos + 2 > msg.size()) return std::nullopt;
      return pos + 2;
    }
    if (len & 0xC0) return std::nullopt;
    total += 1 + len;
    if (total > kMaxNameWireLength || pos + 1 + len > msg.size()) return std::nullopt;
    pos += 1 + len;
    if (len == 0) return pos;
  }
}

uint32_t effectiveTtl(uint32_t ttl) {
  return ttl > kMaxTtl ? 0 : ttl;
}

}  // namespace

std::optional<DnsQuestion> parseQuestion(std::span<const uint8_t> msg) {
  if (msg.size() < kDnsHeaderSize || readU16(msg, 4) != 1) return std::nullopt;
  DnsQuestion q;
  auto end = readName(msg, kDnsHeaderSize, q.name);
  if (!end || *end + 4 > msg.size()) return std::nullopt;
  q.type = readU16(msg, *end);
  q.qclass = readU16(msg, *end + 2);
  q.end = *end + 4;
  return q;
}

bool forEachRecord(std::span<const uint8_t> msg, const DnsQuestion& q,
                   const std::function<bool(const RrRef&)>& fn) {
  if (msg.size() < kDnsHeaderSize) return false;
  const uint16_t counts[3] = {readU16(msg, 6), readU16(msg, 8), readU16(msg, 10)};
  size_t pos = q.end;
  for (int section = 0; section < 3; ++section) {
    for (uint16_t i = 0; i < counts[section]; ++i) {
      auto after = skipName(msg, pos);
      if (!after || *after + kRrFixedSize > msg.size()) return false;
      RrRef rr;
      rr.section = section + 1;
      rr.type = readU16(msg, *after);
      rr.rrclass = readU16(msg, *after + 2);
      rr.ttl_offset = *after + 4;
      rr.ttl = readU32(msg, rr.ttl_offset);
      rr.rdlength = readU16(msg, *after + 8);
      rr.rdata_offset = *after + kRrFixedSize;
      if (rr.rdata_offset + rr.rdlength > msg.size()) return false;
      if (!fn(rr)) return true;
      pos = rr.rdata_offset + rr.rdlength;
    }
  }
  return true;
}

std::optional<EdnsFlags> ednsFlags(std::span<const uint8_t> msg, const DnsQuestion& q) {
  EdnsFlags f;
  bool ok = forEachRecord(msg, q, [&](const RrRef& rr) {
    if (rr.section == 3 && rr.type == kTypeOpt) {
      f.present = true;
      f.dnssec_ok = (rr.ttl & kEdnsDoBit) != 0;
      return false;
    }
    return true;
  });
  if (!ok) return std::nullopt;
  return f;
}

std::optional<std::chrono::seconds> cacheLifetime(std::span<const uint8_t> reply,
                                                  std::chrono::seconds max_ttl,
                                                  std::chrono::seconds negative_ttl_cap) {
  if (reply.size() < kDnsHeaderSize) return std::nullopt;
  if (!(reply[2] & kFlagQr) || (reply[2] & kFlagTc)) return std::nullopt;
  uint8_t rcode = reply[3] & 0x0F;
  auto q = parseQuestion(reply);
  if (!q) return std::nullopt;
  uint16_t ancount = readU16(reply, 6);
  std::optional<uint32_t> ttl;
  bool ok = true;
  if (rcode == kRcodeNoError && ancount > 0) {
    ok = forEachRecord(reply, *q, [&](const RrRef& rr) {
      if (rr.section != 1) return false;
      ttl = std::min(ttl.value_or(kMaxTtl), effectiveTtl(rr.ttl));
      return true;
    });
    if (ttl) ttl = std::min<uint32_t>(*ttl, static_cast<uint32_t>(max_ttl.count()));
  } else if (rcode == kRcodeNoError || rcode == kRcodeNxDomain) {
    // RFC 2308 5: the negative TTL is the SOA record's TTL capped by its MINIMUM field; a CNAME
    // chain in the answer (RFC 2308 2.1) must not outlive its own TTL either.
    std::optional<uint32_t> chain;
    ok = forEachRecord(reply, *q, [&](const RrRef& rr) {
      if (rr.section == 1) chain = std::min(chain.value_or(kMaxTtl), effectiveTtl(rr.ttl));
      if (rr.section != 2 || rr.type != kTypeSoa) return rr.section <= 2;
      if (rr.rdlength < kSoaFixedSize + 2) return true;
      uint32_t minimum = readU32(reply, rr.rdata_offset + rr.rdlength - 4);
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

std::optional<std::string> AnswerCache::keyOf(std::span<const uint8_t> query) {
  auto q = parseQuestion(query);
  if (!q) return std::nullopt;
  auto edns = ednsFlags(query, *q);
  if (!edns) return std::nullopt;
  std::string key = std::move(q->name);
  key.push_back(static_cast<char>(q->type >> 8));
  key.push_back(static_cast<char>(q->type));
  key.push_back(static_cast<char>(q->qclass >> 8));
  key.push_back(static_cast<char>(q->qclass));
  key.push_back(static_cast<char>((edns->present ? 1 : 0) | (edns->dnssec_ok ? 2 : 0)));
  return key;
}

std::optional<std::vector<uint8_t>> AnswerCache::lookup(const std::string& key,
                                                        std::span<const uint8_t> query,
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
  auto cq = parseQuestion(query);
  if (!rq || !cq) return std::nullopt;  // cannot happen: both were parsed before
  const uint32_t remaining = static_cast<uint32_t>((lifetime - age).count());
  const uint32_t aged = static_cast<uint32_t>(age.count());
  std::span<uint8_t> w(out);
  forEachRecord(out, *rq, [&](const RrRef& rr) {
    if (rr.type == kTypeOpt) return true;  // its TTL field holds EDNS flags, not a TTL
    uint32_t ttl = effectiveTtl(rr.ttl);
    ttl = ttl > aged ? ttl - aged : 0;
    writeU32(w, rr.ttl_offset, std::min(ttl, remaining));
    return true;
  });
  w[0] = query[0];
  w[1] = query[1];
  w[2] = static_cast<uint8_t>((w[2] & ~kFlagRd) | (query[2] & kFlagRd));
  // Echo the client's spelling of the name (it may use 0x20 case randomisation).
  size_t name_len = cq->end - 4 - kDnsHeaderSize;
  if (rq->end == cq->end && rq->name.size() == name_len && cq->name.size() == name_len)
    std::memcpy(&w[kDnsHeaderSize], &query[kDnsHeaderSize], name_len);
  return out;
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
