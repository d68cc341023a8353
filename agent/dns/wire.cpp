#include "agent/dns/wire.hpp"

#include <cstring>

namespace elasticdns::agent::wire {
namespace {

constexpr size_t kFixedRrSize = 10;  // type, class, ttl, rdlength (RFC 1035 4.1.3)
constexpr size_t kMaxPointerHops = 16;

/// Skip a (possibly compressed) name at `pos`; compression pointers only backwards, at most
/// kMaxPointerHops of them. Returns the offset after the name in the original stream, or 0.
size_t skipName(std::span<const uint8_t> p, size_t pos) noexcept {
  size_t end = 0;  // where the name ends in the stream, once a pointer was followed
  size_t hops = 0;
  size_t total = 0;
  while (true) {
    if (pos >= p.size()) return 0;
    uint8_t len = p[pos];
    if ((len & 0xC0) == 0xC0) {
      if (pos + 1 >= p.size()) return 0;
      size_t target = (static_cast<size_t>(len & 0x3F) << 8) | p[pos + 1];
      if (target >= pos || ++hops > kMaxPointerHops) return 0;
      if (end == 0) end = pos + 2;
      pos = target;
      continue;
    }
    if ((len & 0xC0) != 0) return 0;  // 0x40/0x80: extended label types, obsolete
    total += len + 1;
    if (total > kMaxNameWireLength) return 0;
    if (len == 0) return end != 0 ? end : pos + 1;
    pos += 1 + len;
  }
}

inline char lower(uint8_t c) {
  return static_cast<char>((c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c);
}

}  // namespace

ParseStatus parseQuery(std::span<const uint8_t> p, Query& q) noexcept {
  if (p.size() < kHeaderSize) return ParseStatus::kDrop;
  q.id = get16(&p[0]);
  q.flags = get16(&p[2]);
  q.opcode = static_cast<uint8_t>((q.flags >> 11) & 0x0F);
  q.question_end = 0;
  q.name_len = 0;
  q.has_edns = false;
  q.edns_udp_size = 0;
  q.edns_version = 0;
  q.edns_do = false;
  if (q.flags & kFlagQr) return ParseStatus::kDrop;  // a response: never answer one
  const uint16_t qdcount = get16(&p[4]);
  const uint16_t ancount = get16(&p[6]);
  const uint16_t nscount = get16(&p[8]);
  const uint16_t arcount = get16(&p[10]);
  if (q.opcode != 0) return ParseStatus::kNotImp;
  if (qdcount != 1 || ancount != 0 || nscount != 0 || arcount > kMaxAdditionalRecords)
    return ParseStatus::kFormErr;

  // The question name: uncompressed (nothing precedes it that it could point to).
  size_t pos = kHeaderSize;
  size_t wire_len = 0;
  while (true) {
    if (pos >= p.size()) return ParseStatus::kFormErr;
    uint8_t len = p[pos];
    if (len > kMaxLabelLength) return ParseStatus::kFormErr;  // pointer or extended label
    wire_len += len + 1;
    if (wire_len > kMaxNameWireLength) return ParseStatus::kFormErr;
    ++pos;
    if (len == 0) break;
    if (pos + len > p.size()) return ParseStatus::kFormErr;
    if (q.name_len != 0) q.name[q.name_len++] = '.';
    for (size_t i = 0; i < len; ++i) {
      char c = lower(p[pos + i]);
      q.name[q.name_len++] = c == '.' ? '\x01' : c;
    }
    pos += len;
  }
  if (pos + 4 > p.size()) return ParseStatus::kFormErr;
  q.qtype = get16(&p[pos]);
  q.qclass = get16(&p[pos + 2]);
  pos += 4;
  q.question_end = pos;

  // Additional section: find the OPT record (at most one, owner root, RFC 6891 6.1.1).
  for (uint16_t i = 0; i < arcount; ++i) {
    size_t owner = pos;
    pos = skipName(p, pos);
    if (pos == 0 || pos + kFixedRrSize > p.size()) return ParseStatus::kFormErr;
    uint16_t type = get16(&p[pos]);
    uint16_t rdlen = get16(&p[pos + 8]);
    if (type == kTypeOpt) {
      if (q.has_edns || p[owner] != 0) return ParseStatus::kFormErr;
      q.has_edns = true;
      q.edns_udp_size = get16(&p[pos + 2]);
      q.edns_version = p[pos + 5];
      q.edns_do = (p[pos + 6] & 0x80) != 0;
    }
    pos += kFixedRrSize;
    if (pos + rdlen > p.size()) return ParseStatus::kFormErr;
    pos += rdlen;
  }
  return ParseStatus::kOk;
}

uint16_t responseFlags(const Query& q, bool aa, uint8_t rcode) {
  uint16_t f = kFlagQr | static_cast<uint16_t>(q.opcode << 11) | (q.flags & (kFlagRd | kFlagCd)) |
               kFlagRa | (rcode & 0x0F);
  if (aa) f |= kFlagAa;
  return f;
}

size_t writeHeaderAndQuestion(const Query& q, std::span<const uint8_t> query, uint16_t flags,
                              uint16_t ancount, uint16_t nscount, uint16_t arcount,
                              std::span<uint8_t> out) noexcept {
  size_t qlen = q.question_end > kHeaderSize ? q.question_end - kHeaderSize : 0;
  if (out.size() < kHeaderSize + qlen || query.size() < kHeaderSize + qlen) return 0;
  uint8_t* o = out.data();
  put16(o, q.id);
  put16(o + 2, flags);
  put16(o + 4, qlen ? 1 : 0);
  put16(o + 6, ancount);
  put16(o + 8, nscount);
  put16(o + 10, arcount);
  if (qlen) std::memcpy(o + kHeaderSize, query.data() + kHeaderSize, qlen);
  return kHeaderSize + qlen;
}

void writeOpt(uint8_t* o, uint16_t udp_size, uint8_t ext_rcode, bool ede, uint16_t ede_code) {
  o[0] = 0;  // root owner
  put16(o + 1, kTypeOpt);
  put16(o + 3, udp_size);
  o[5] = ext_rcode;
  o[6] = 0;  // version 0
  o[7] = 0;  // flags (DO not set: we sign nothing)
  o[8] = 0;
  put16(o + 9, ede ? 6 : 0);
  if (ede) {
    put16(o + 11, kEdnsOptionEde);
    put16(o + 13, 2);
    put16(o + 15, ede_code);
  }
}

size_t writeErrorResponse(const Query& q, std::span<const uint8_t> query, uint16_t rcode,
                          std::span<uint8_t> out) noexcept {
  bool opt = q.has_edns;
  size_t n = writeHeaderAndQuestion(q, query, responseFlags(q, false, rcode & 0x0F), 0, 0,
                                    opt ? 1 : 0, out);
  if (n == 0) return 0;
  if (opt) {
    if (out.size() < n + optSize(false)) return 0;
    writeOpt(out.data() + n, kMaxUdpPayload, static_cast<uint8_t>(rcode >> 4), false, 0);
    n += optSize(false);
  }
  return n;
}

size_t udpLimit(const Query& q) {
  if (!q.has_edns) return kMinUdpPayload;
  size_t s = q.edns_udp_size;
  if (s < kMinUdpPayload) return kMinUdpPayload;
  return s > kMaxUdpPayload ? kMaxUdpPayload : s;
}

}  // namespace elasticdns::agent::wire
