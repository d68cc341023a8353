#include "agent/containernet/rtnetlink.hpp"

#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>  // before the linux/ headers, which then leave its names alone
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>

#include "agent/util/unique_fd.hpp"

namespace elasticdns::agent::rtnl {
namespace {

constexpr size_t kRequestSize = 1024;  // the largest request here is a link with its info
constexpr size_t kReceiveBuffer = 64 * 1024;

// One request under construction: header, fixed part, attributes (nested ones by hand).
class Request {
 public:
  Request(uint16_t type, uint16_t flags) {
    hdr()->nlmsg_len = NLMSG_LENGTH(0);
    hdr()->nlmsg_type = type;
    hdr()->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | flags);
    hdr()->nlmsg_seq = 1;
  }
  nlmsghdr* hdr() { return reinterpret_cast<nlmsghdr*>(buf_); }
  template <class T>
  T* body() {
    hdr()->nlmsg_len = NLMSG_LENGTH(sizeof(T));
    return reinterpret_cast<T*>(NLMSG_DATA(hdr()));
  }
  rtattr* put(uint16_t type, const void* data, size_t len) {
    size_t at = NLMSG_ALIGN(hdr()->nlmsg_len);
    auto* a = reinterpret_cast<rtattr*>(buf_ + at);
    a->rta_type = type;
    a->rta_len = static_cast<uint16_t>(RTA_LENGTH(len));
    if (len) std::memcpy(RTA_DATA(a), data, len);
    hdr()->nlmsg_len = static_cast<uint32_t>(at + RTA_ALIGN(a->rta_len));
    return a;
  }
  void put(uint16_t type, const std::string& s) { put(type, s.c_str(), s.size() + 1); }
  template <class T>
  void putValue(uint16_t type, T v) {
    put(type, &v, sizeof v);
  }
  rtattr* begin(uint16_t type) { return put(type, nullptr, 0); }
  void end(rtattr* nest) {
    nest->rta_len = static_cast<uint16_t>(reinterpret_cast<char*>(buf_) + hdr()->nlmsg_len -
                                          reinterpret_cast<char*>(nest));
  }

 private:
  alignas(nlmsghdr) char buf_[kRequestSize] = {};
};

Result<UniqueFd> openSocket() {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd) return Error{"rtnetlink", std::string("socket: ") + strerror(errno)};
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof local) != 0)
    return Error{"rtnetlink", std::string("bind: ") + strerror(errno)};
  return fd;
}

// Sends `req` and reads the answers: each message to `each` (a dump), until NLMSG_DONE or the
// ACK. 0 or the errno the kernel answered.
int exchange(Request& req, const std::function<void(const nlmsghdr*)>& each = nullptr) {
  auto fd = openSocket();
  if (!fd) return EIO;
  if (!each) req.hdr()->nlmsg_flags |= NLM_F_ACK;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd->get(), req.hdr(), req.hdr()->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof kernel) < 0)
    return errno;
  std::vector<char> buf(kReceiveBuffer);
  while (true) {
    ssize_t n = ::recv(fd->get(), buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? errno : EIO;
    int len = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, len);
         h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == NLMSG_DONE) return 0;
      if (h->nlmsg_type == NLMSG_ERROR) {
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return EIO;
        return -static_cast<const nlmsgerr*>(NLMSG_DATA(h))->error;  // 0 is the ACK
      }
      if (each) each(h);
    }
  }
}

std::optional<Error> failed(const std::string& what, int error) {
  if (error == 0) return std::nullopt;
  return Error{"rtnetlink", what + ": " + strerror(error)};
}

bool toInAddr(const std::string& text, in_addr& out) {
  return inet_pton(AF_INET, text.c_str(), &out) == 1;
}

std::string fromInAddr(const void* p) {
  char buf[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, p, buf, sizeof buf);
  return buf;
}

// The attributes of a message after its fixed part `T`, as (type → payload) calls.
template <class T>
void forEachAttribute(const nlmsghdr* h, const std::function<void(const rtattr*)>& fn) {
  int len = static_cast<int>(h->nlmsg_len) - static_cast<int>(NLMSG_LENGTH(sizeof(T)));
  for (auto* a = reinterpret_cast<const rtattr*>(reinterpret_cast<const char*>(NLMSG_DATA(h)) +
                                                 NLMSG_ALIGN(sizeof(T)));
       RTA_OK(a, len); a = RTA_NEXT(a, len))
    fn(a);
}

std::optional<Error> addressRequest(uint16_t type, uint16_t flags, unsigned index,
                                    const Ipv4Prefix& address) {
  in_addr a{};
  if (!toInAddr(address.address, a)) return Error{"rtnetlink", "bad address " + address.address};
  Request req(type, flags);
  auto* ifa = req.body<ifaddrmsg>();
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = static_cast<uint8_t>(address.prefix);
  ifa->ifa_index = index;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  req.put(IFA_LOCAL, &a, sizeof a);
  req.put(IFA_ADDRESS, &a, sizeof a);
  return failed((type == RTM_NEWADDR ? "add address " : "delete address ") + address.toString(),
                exchange(req));
}

std::optional<Error> routeRequest(uint16_t type, uint16_t flags, unsigned index,
                                  const Ipv4Prefix& destination, const std::string& source) {
  in_addr dst{};
  if (!toInAddr(destination.address, dst))
    return Error{"rtnetlink", "bad destination " + destination.address};
  Request req(type, flags);
  auto* rt = req.body<rtmsg>();
  rt->rtm_family = AF_INET;
  rt->rtm_dst_len = static_cast<uint8_t>(destination.prefix);
  rt->rtm_table = RT_TABLE_MAIN;
  rt->rtm_protocol = kRouteProtocol;
  rt->rtm_scope = RT_SCOPE_LINK;
  rt->rtm_type = RTN_UNICAST;
  req.put(RTA_DST, &dst, sizeof dst);
  req.putValue<uint32_t>(RTA_OIF, index);
  in_addr src{};
  if (!source.empty() && toInAddr(source, src)) req.put(RTA_PREFSRC, &src, sizeof src);
  return failed((type == RTM_NEWROUTE ? "route " : "delete route ") + destination.toString(),
                exchange(req));
}

}  // namespace

Result<Ipv4Prefix> parseIpv4Prefix(const std::string& text) {
  Ipv4Prefix p;
  auto slash = text.find('/');
  p.address = text.substr(0, slash);
  in_addr a{};
  if (!toInAddr(p.address, a)) return Error{"", "not an IPv4 prefix: '" + text + "'"};
  if (slash != std::string::npos) {
    std::string len = text.substr(slash + 1);
    if (len.empty() || len.size() > 2 || len.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(len) > 32)
      return Error{"", "not an IPv4 prefix: '" + text + "'"};
    p.prefix = static_cast<unsigned>(std::stoi(len));
  }
  return p;
}

unsigned linkIndex(const std::string& name) {
  return if_nametoindex(name.c_str());
}

int createLink(const std::string& name, const std::string& kind) {
  Request req(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  req.body<ifinfomsg>()->ifi_family = AF_UNSPEC;
  req.put(IFLA_IFNAME, name);
  auto* info = req.begin(IFLA_LINKINFO);
  req.put(IFLA_INFO_KIND, kind.c_str(), kind.size());
  req.end(info);
  return exchange(req);
}

int deleteLink(const std::string& name) {
  unsigned index = linkIndex(name);
  if (index == 0) return ENODEV;
  Request req(RTM_DELLINK, 0);
  auto* ifi = req.body<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = static_cast<int>(index);
  return exchange(req);
}

std::optional<Error> setLinkUp(unsigned index, uint32_t mtu) {
  Request req(RTM_NEWLINK, 0);
  auto* ifi = req.body<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = static_cast<int>(index);
  ifi->ifi_flags = IFF_UP;
  ifi->ifi_change = IFF_UP;
  if (mtu != 0) req.putValue<uint32_t>(IFLA_MTU, mtu);
  return failed("set link " + std::to_string(index) + " up, mtu " + std::to_string(mtu),
                exchange(req));
}

Result<uint32_t> linkMtu(const std::string& name) {
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return Error{"", std::string("socket: ") + strerror(errno)};
  ifreq ifr{};
  if (name.size() >= sizeof ifr.ifr_name) return Error{"", "interface name too long: " + name};
  std::memcpy(ifr.ifr_name, name.c_str(), name.size());
  if (::ioctl(fd.get(), SIOCGIFMTU, &ifr) != 0)
    return Error{"", "MTU of " + name + ": " + strerror(errno)};
  return static_cast<uint32_t>(ifr.ifr_mtu);
}

Result<std::vector<Ipv4Prefix>> addresses(unsigned index) {
  Request req(RTM_GETADDR, NLM_F_DUMP);
  req.body<ifaddrmsg>()->ifa_family = AF_INET;
  std::vector<Ipv4Prefix> out;
  int e = exchange(req, [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWADDR) return;
    auto* ifa = static_cast<const ifaddrmsg*>(NLMSG_DATA(h));
    if (ifa->ifa_index != index || ifa->ifa_family != AF_INET) return;
    forEachAttribute<ifaddrmsg>(h, [&](const rtattr* a) {
      if (a->rta_type == IFA_LOCAL && RTA_PAYLOAD(a) == 4)
        out.push_back({fromInAddr(RTA_DATA(a)), ifa->ifa_prefixlen});
    });
  });
  if (e != 0) return Error{"rtnetlink", std::string("list addresses: ") + strerror(e)};
  return out;
}

std::optional<Error> addAddress(unsigned index, const Ipv4Prefix& address) {
  return addressRequest(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, index, address);
}

std::optional<Error> deleteAddress(unsigned index, const Ipv4Prefix& address) {
  return addressRequest(RTM_DELADDR, 0, index, address);
}

Result<std::vector<Ipv4Prefix>> routes(unsigned index) {
  Request req(RTM_GETROUTE, NLM_F_DUMP);
  req.body<rtmsg>()->rtm_family = AF_INET;
  std::vector<Ipv4Prefix> out;
  int e = exchange(req, [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWROUTE) return;
    auto* rt = static_cast<const rtmsg*>(NLMSG_DATA(h));
    if (rt->rtm_family != AF_INET || rt->rtm_protocol != kRouteProtocol) return;
    std::string dst = "0.0.0.0";
    unsigned oif = 0, table = rt->rtm_table;
    forEachAttribute<rtmsg>(h, [&](const rtattr* a) {
      if (a->rta_type == RTA_DST && RTA_PAYLOAD(a) == 4) dst = fromInAddr(RTA_DATA(a));
      if (a->rta_type == RTA_OIF && RTA_PAYLOAD(a) == 4) std::memcpy(&oif, RTA_DATA(a), sizeof oif);
      if (a->rta_type == RTA_TABLE && RTA_PAYLOAD(a) == 4)
        std::memcpy(&table, RTA_DATA(a), sizeof table);
    });
    if (oif == index && table == RT_TABLE_MAIN) out.push_back({dst, rt->rtm_dst_len});
  });
  if (e != 0) return Error{"rtnetlink", std::string("list routes: ") + strerror(e)};
  return out;
}

std::optional<Error> replaceRoute(unsigned index, const Ipv4Prefix& destination,
                                  const std::string& source) {
  return routeRequest(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, index, destination, source);
}

std::optional<Error> deleteRoute(unsigned index, const Ipv4Prefix& destination) {
  return routeRequest(RTM_DELROUTE, 0, index, destination, "");
}

}  // namespace elasticdns::agent::rtnl
