#include "agent/dns/query_handler.hpp"

#include <algorithm>
#include <cstring>

#include <spdlog/spdlog.h>
#include <boost/asio/ip/address.hpp>
#include <boost/endian/conversion.hpp>

#include "agent/util/socket_address.hpp"

namespace elasticdns::agent {

using boost::endian::load_big_u16;

size_t typeIndex(uint16_t type) {
  for (size_t i = 0; i < kCountedTypes.size(); ++i)
    if (kCountedTypes[i] == type) return i;
  return kCountedTypeSlots - 1;
}

size_t rcodeIndex(uint16_t rcode) {
  return rcode < kCountedRcodeSlots - 1 ? rcode : kCountedRcodeSlots - 1;
}

std::shared_ptr<const AllowList> AllowList::from(const std::vector<Cidr>& cidrs) {
  namespace ip = boost::asio::ip;
  auto l = std::make_shared<AllowList>();
  for (const auto& c : cidrs) {
    std::array<uint8_t, 16> net{}, mask{};
    auto bytes = c.network.is_v4()
                     ? ip::make_address_v6(ip::v4_mapped, c.network.to_v4()).to_bytes()
                     : c.network.to_v6().to_bytes();
    unsigned bits = c.network.is_v4() ? c.prefix + 96 : c.prefix;
    for (unsigned i = 0; i < 16; ++i) {
      unsigned take = bits >= 8 ? 8 : bits;
      mask[i] = take ? static_cast<uint8_t>(0xFF << (8 - take)) : 0;
      net[i] = bytes[i] & mask[i];
      bits -= take;
    }
    Zone::AddrKey n, m;
    std::memcpy(&n.hi, net.data(), 8);
    std::memcpy(&n.lo, net.data() + 8, 8);
    std::memcpy(&m.hi, mask.data(), 8);
    std::memcpy(&m.lo, mask.data() + 8, 8);
    l->nets.emplace_back(n, m);
  }
  return l;
}

QueryHandler::QueryHandler(QueryHandlerShared& shared, uint32_t rotation_seed)
    : shared_(shared),
      zone_reader_(shared.store),
      allow_reader_(shared.allow),
      rotation_(rotation_seed) {
  refresh();
}

void QueryHandler::refresh() {
  zone_ = zone_reader_.refresh();
  allow_ = allow_reader_.refresh();
}

size_t QueryHandler::refuse(const wire::Query& q, std::span<const uint8_t> packet,
                            std::span<uint8_t> out) {
  count(q, wire::kRefused);
  return wire::writeErrorResponse(q, packet, wire::kRefused, out);
}

QueryDecision QueryHandler::handle(std::span<const uint8_t> packet, const Peer& peer,
                                   Clock::time_point now, std::span<uint8_t> out,
                                   wire::Query& q) noexcept {
  using Action = QueryDecision::Action;
  wire::ParseStatus ps = wire::parseQuery(packet, q);
  if (ps == wire::ParseStatus::kDrop) {
    QueryStats::add(stats_.dropped);
    return {};
  }
  const size_t limit = peer.transport == Transport::kUdp ? wire::udpLimit(q) : out.size();
  std::span<uint8_t> o = out.first(std::min(out.size(), std::max(limit, wire::kMinUdpPayload)));
  auto reply = [](size_t length) { return QueryDecision{Action::kReply, length, 0}; };
  if (allow_ == nullptr || !allow_->allows(Zone::addrKeyOf(peer.addr))) {
    if (shared_.refused_log.allow())
      spdlog::warn("server: REFUSED a query from {} (outside allow_networks)",
                   addressText(peer.addr));
    return reply(refuse(q, packet, o));
  }
  if (ps != wire::ParseStatus::kOk) {
    uint16_t rcode = ps == wire::ParseStatus::kNotImp ? wire::kNotImp : wire::kFormErr;
    if (rcode == wire::kFormErr && shared_.formerr_log.allow())
      spdlog::warn("server: FORMERR to {}", addressText(peer.addr));
    count(q, rcode);
    return reply(wire::writeErrorResponse(q, packet, rcode, o));
  }
  if (q.has_edns && q.edns_version != 0) {
    count(q, wire::kRcodeBadVers);
    return reply(wire::writeErrorResponse(q, packet, wire::kRcodeBadVers, o));
  }
  if (zone_ == nullptr) {
    count(q, wire::kServFail);
    return reply(wire::writeErrorResponse(q, packet, wire::kServFail, o));
  }
  AnswerInput in;
  in.query = &q;
  in.packet = packet;
  in.container_id = shared_.identity->containerIdOf(peer);
  in.source = &peer.addr;
  in.now = now;
  in.stale = shared_.stale.load(std::memory_order_relaxed);
  in.limit = limit;
  in.rotation = rotation_++;
  in.sticky = &shared_.sticky;
  AnswerOutcome r = zone_->answer(in, o);
  if (!r.in_zone) return forwardOrRefuse(q, packet, peer, in.container_id, now, limit, o);
  count(q, r.rcode);
  if (r.caller_known) QueryStats::add(stats_.callers_known);
  if (r.caller_checked && !r.caller_known) QueryStats::add(stats_.callers_unknown);
  if (r.truncated) QueryStats::add(stats_.truncated);
  return reply(r.length);
}

QueryDecision QueryHandler::forwardOrRefuse(const wire::Query& q, std::span<const uint8_t> packet,
                                            const Peer& peer, std::string_view container_id,
                                            Clock::time_point now, size_t limit,
                                            std::span<uint8_t> out) {
  using Action = QueryDecision::Action;
  if (!shared_.forwarding.load(std::memory_order_relaxed))
    return {Action::kReply, refuse(q, packet, out), 0};
  if (!shared_.forward_limit.allow(RateLimiter::callerKey(container_id, peer.addr), now)) {
    if (shared_.limited_log.allow())
      spdlog::warn("server: REFUSED a query from {}{}{} (over forward_limit)",
                   addressText(peer.addr), container_id.empty() ? "" : ", container ",
                   container_id);
    QueryStats::add(stats_.forward_limited);
    return {Action::kReply, refuse(q, packet, out), 0};
  }
  QueryStats::add(stats_.forwarded);  // counted by type and rcode when the reply comes
  return {Action::kForward, 0, limit};
}

size_t relayReply(const wire::Query& q, std::span<const uint8_t> packet, size_t limit,
                  std::span<const uint8_t> reply, std::span<uint8_t> out,
                  ForwardedStats& stats) noexcept {
  const uint16_t rcode =
      reply.size() >= wire::kHeaderSize ? load_big_u16(&reply[2]) & 0x0F : wire::kServFail;
  stats.queries[typeIndex(q.qtype)][rcodeIndex(rcode)].fetch_add(1, std::memory_order_relaxed);
  if (reply.empty()) {
    stats.servfail->inc();
    return wire::writeErrorResponse(q, packet, wire::kServFail, out);
  }
  if (reply.size() <= limit || reply.size() < wire::kHeaderSize) return 0;
  uint16_t flags = static_cast<uint16_t>(load_big_u16(&reply[2]) | wire::kFlagTc);
  size_t n = wire::writeHeaderAndQuestion(q, packet, flags, 0, 0, q.has_edns ? 1 : 0, out);
  if (n != 0 && q.has_edns && n + wire::optSize(false) <= out.size()) {
    wire::writeOpt(out.data() + n, wire::kMaxUdpPayload, 0, q.edns_do, false, 0);
    n += wire::optSize(false);
  }
  return n;
}

}  // namespace elasticdns::agent
