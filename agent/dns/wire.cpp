#include "agent/dns/wire.hpp"

#include <cstring>

#include <boost/endian/conversion.hpp>

namespace elasticdns::agent::wire {
namespace {

using boost::endian::load_big_u16;
using boost::endian::load_big_u32;
using boost::endian::store_big_u16;

inline uint8_t lower(uint8_t c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<uint8_t>(c + ('a' - 'A')) : c;
}

/// Walks a (possibly compressed) name at `pos`, calling `on_label(offset, length)` for each
/// label, the root's included. Pointers are followed only backwards, at most kMaxPointerHops.
/// Returns the offset after the name as it sits at `pos`, or 0 when it is malformed.
template <typename OnLabel>
size_t walkName(std::span<const uint8_t> p, size_t pos, OnLabel&& on_label) noexcept {
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
    if (total > kMaxNameWireLength || pos + 1 + len > p.size()) return 0;
    on_label(pos, len);
    if (len == 0) return end != 0 ? end : pos + 1;
    pos += 1 + len;
  }
}

size_t skipName(std::span<const uint8_t> p, size_t pos) noexcept {
  return walkName(p, pos, [](size_t, uint8_t) {});
}

}  // namespace

namespace {

constexpr uint8_t kOptDoBit = 0x80;  // RFC 3225 3: the high bit of the OPT TTL's flags

/// Whether the options in an OPT record's rdata [at, at + len) are well formed: each a code, a
/// length and that many bytes, together filling the rdata exactly (RFC 6891 6.1.2).
bool optionsFit(std::span<const uint8_t> p, size_t at, size_t len) noexcept {
  const size_t end = at + len;
  while (at < end) {
    if (end - at < 4) return false;
    const size_t option_len = load_big_u16(&p[at + 2]);
    at += 4;
    if (end - at < option_len) return false;
    at += option_len;
  }
  return true;
}

/// Reads the question at kHeaderSize into `q`. Returns false when it is malformed.
bool parseQuestionInto(std::span<const uint8_t> p, Query& q) noexcept {
  // The question name: uncompressed (nothing precedes it that it could point to).
  size_t pos = kHeaderSize;
  size_t wire_len = 0;
  while (true) {
    if (pos >= p.size()) return false;
    uint8_t len = p[pos];
    if (len > kMaxLabelLength) return false;  // pointer or extended label
    wire_len += len + 1;
    if (wire_len > kMaxNameWireLength) return false;
    ++pos;
    if (len == 0) break;
    if (pos + len > p.size()) return false;
    if (q.name_len != 0) q.name[q.name_len++] = '.';
    for (size_t i = 0; i < len; ++i) {
      char c = static_cast<char>(lower(p[pos + i]));
      q.name[q.name_len++] = c == '.' ? '\x01' : c;
    }
    pos += len;
  }
  if (pos + 4 > p.size()) return false;
  q.qtype = load_big_u16(&p[pos]);
  q.qclass = load_big_u16(&p[pos + 2]);
  q.question_end = pos + 4;
  return true;
}

/// Walks `records` records from `pos` (the answer, authority and additional sections; the first
/// `first_additional` of them are not additional) and takes the OPT record's EDNS fields into
/// `q`. Returns false when a record is malformed or the OPT is not valid (then `q.has_edns` is
/// false).
bool readRecords(std::span<const uint8_t> p, size_t pos, size_t records, size_t first_additional,
                 Query& q) noexcept {
  for (size_t i = 0; i < records; ++i) {
    const size_t owner = pos;
    pos = skipName(p, pos);
    if (pos == 0 || pos + kFixedRrSize > p.size()) return false;
    const uint16_t type = load_big_u16(&p[pos]);
    const uint16_t rdlen = load_big_u16(&p[pos + 8]);
    const size_t rdata = pos + kFixedRrSize;
    if (rdata + rdlen > p.size()) return false;
    if (type == kTypeOpt) {
      // One OPT, owned by the root, in the additional section (RFC 6891 6.1.1).
      if (q.has_edns || i < first_additional || p[owner] != 0 || !optionsFit(p, rdata, rdlen)) {
        q.has_edns = false;
        return false;
      }
      q.has_edns = true;
      q.edns_udp_size = load_big_u16(&p[pos + 2]);
      q.edns_version = p[pos + 5];
      q.edns_do = (p[pos + 6] & kOptDoBit) != 0;
    }
    pos = rdata + rdlen;
  }
  return true;
}

}  // namespace

ParseStatus parseQuery(std::span<const uint8_t> p, Query& q) noexcept {
  if (p.size() < kHeaderSize) return ParseStatus::kDrop;
  q.id = load_big_u16(&p[0]);
  q.flags = load_big_u16(&p[2]);
  q.opcode = static_cast<uint8_t>((q.flags >> 11) & 0x0F);
  q.question_end = 0;
  q.name_len = 0;
  q.has_edns = false;
  q.edns_udp_size = 0;
  q.edns_version = 0;
  q.edns_do = false;
  if (q.flags & kFlagQr) return ParseStatus::kDrop;  // a response: never answer one
  const uint16_t qdcount = load_big_u16(&p[4]);
  const uint16_t ancount = load_big_u16(&p[6]);
  const uint16_t nscount = load_big_u16(&p[8]);
  const uint16_t arcount = load_big_u16(&p[10]);
  // What is wrong is decided by the header; the rest is read as far as it goes, so that the
  // error reply can echo the question and the OPT.
  ParseStatus bad = ParseStatus::kOk;
  if (q.opcode != 0)
    bad = ParseStatus::kNotImp;
  else if (qdcount != 1 || ancount != 0 || nscount != 0 || arcount > kMaxAdditionalRecords)
    bad = ParseStatus::kFormErr;
  const ParseStatus malformed = bad == ParseStatus::kOk ? ParseStatus::kFormErr : bad;
  if (qdcount != 1) return malformed;  // no question to echo, nor to skip to the records
  if (!parseQuestionInto(p, q)) {
    q.question_end = 0;
    q.name_len = 0;
    return malformed;
  }
  const size_t records = size_t{ancount} + nscount + arcount;
  if (!readRecords(p, q.question_end, records, size_t{ancount} + nscount, q)) return malformed;
  return bad;
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
  store_big_u16(o, q.id);
  store_big_u16(o + 2, flags);
  store_big_u16(o + 4, qlen ? 1 : 0);
  store_big_u16(o + 6, ancount);
  store_big_u16(o + 8, nscount);
  store_big_u16(o + 10, arcount);
  if (qlen) std::memcpy(o + kHeaderSize, query.data() + kHeaderSize, qlen);
  return kHeaderSize + qlen;
}

void writeOpt(uint8_t* o, uint16_t udp_size, uint8_t ext_rcode, bool dnssec_ok, bool ede,
              uint16_t ede_code) {
  o[0] = 0;  // root owner
  store_big_u16(o + 1, kTypeOpt);
  store_big_u16(o + 3, udp_size);
  o[5] = ext_rcode;
  o[6] = 0;                          // version 0
  o[7] = dnssec_ok ? kOptDoBit : 0;  // DO copied from the query (RFC 3225 3)
  o[8] = 0;
  store_big_u16(o + 9, ede ? 6 : 0);
  if (ede) {
    store_big_u16(o + 11, kEdnsOptionEde);
    store_big_u16(o + 13, 2);
    store_big_u16(o + 15, ede_code);
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
    writeOpt(out.data() + n, kMaxUdpPayload, static_cast<uint8_t>(rcode >> 4), q.edns_do, false, 0);
    n += optSize(false);
  }
  return n;
}

Question questionOf(const Query& q, std::span<const uint8_t> packet) {
  Question out;
  out.type = q.qtype;
  out.qclass = q.qclass;
  out.end = q.question_end;
  const size_t name_end = q.question_end - 4;
  out.name.reserve(name_end - kHeaderSize);
  for (size_t i = kHeaderSize; i < name_end; ++i)
    out.name.push_back(static_cast<char>(lower(packet[i])));
  return out;
}

std::optional<Question> parseQuestion(std::span<const uint8_t> msg) {
  if (msg.size() < kHeaderSize || load_big_u16(&msg[4]) != 1) return std::nullopt;
  Question q;
  size_t end = walkName(msg, kHeaderSize, [&](size_t at, uint8_t len) {
    q.name.push_back(static_cast<char>(len));
    for (size_t i = 0; i < len; ++i) q.name.push_back(static_cast<char>(lower(msg[at + 1 + i])));
  });
  if (end == 0 || end + 4 > msg.size()) return std::nullopt;
  q.type = load_big_u16(&msg[end]);
  q.qclass = load_big_u16(&msg[end + 2]);
  q.end = end + 4;
  return q;
}

bool forEachRecord(std::span<const uint8_t> msg, const Question& q,
                   const std::function<bool(const Record&)>& fn) {
  if (msg.size() < kHeaderSize) return false;
  const uint16_t counts[3] = {load_big_u16(&msg[6]), load_big_u16(&msg[8]), load_big_u16(&msg[10])};
  size_t pos = q.end;
  for (int section = 0; section < 3; ++section) {
    for (uint16_t i = 0; i < counts[section]; ++i) {
      size_t after = skipName(msg, pos);
      if (after == 0 || after + kFixedRrSize > msg.size()) return false;
      Record rr;
      rr.section = section + 1;
      rr.type = load_big_u16(&msg[after]);
      rr.rrclass = load_big_u16(&msg[after + 2]);
      rr.ttl_offset = after + 4;
      rr.ttl = load_big_u32(&msg[rr.ttl_offset]);
      rr.rdlength = load_big_u16(&msg[after + 8]);
      rr.rdata_offset = after + kFixedRrSize;
      if (rr.rdata_offset + rr.rdlength > msg.size()) return false;
      if (!fn(rr)) return true;
      pos = rr.rdata_offset + rr.rdlength;
    }
  }
  return true;
}

size_t udpLimit(const Query& q) {
  if (!q.has_edns) return kMinUdpPayload;
  size_t s = q.edns_udp_size;
  if (s < kMinUdpPayload) return kMinUdpPayload;
  return s > kMaxUdpPayload ? kMaxUdpPayload : s;
}

}  // namespace elasticdns::agent::wire
