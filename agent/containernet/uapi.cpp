#include "agent/containernet/uapi.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <sstream>

#include <openssl/crypto.h>

#include "agent/util/unique_fd.hpp"

namespace elasticdns::agent {
namespace {

constexpr size_t kMaxUapiAnswer = 4 << 20;  // ~10,000 peers of ~300 bytes each

template <class T>
bool toNumber(const std::string& s, T& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::string joined(const std::vector<std::string>& v, char sep) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out.push_back(sep);
    out += s;
  }
  return out;
}

void wipe(std::string& s) {
  OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

}  // namespace

Result<std::string> renderUapiSet(const PeerPlan& plan, const DeviceSettings& settings) {
  std::string out = "set=1\n";
  if (settings.private_key) out += "private_key=" + keyToHex(*settings.private_key) + "\n";
  if (settings.listen_port) out += "listen_port=" + std::to_string(*settings.listen_port) + "\n";
  for (const auto& key : plan.remove) {
    auto k = keyFromBase64(key);
    if (!k) return Error{"public_key", "not a key: '" + key + "'"};
    out += "public_key=" + keyToHex(k.value()) + "\nremove=true\n";
  }
  for (const auto& peer : plan.set) {
    auto k = keyFromBase64(peer.public_key);
    if (!k) return Error{"public_key", "not a key: '" + peer.public_key + "'"};
    out += "public_key=" + keyToHex(k.value()) + "\n";
    if (!peer.endpoint.empty()) out += "endpoint=" + peer.endpoint + "\n";
    out += "persistent_keepalive_interval=" + std::to_string(settings.persistent_keepalive) + "\n";
    out += "replace_allowed_ips=true\n";
    for (const auto& ip : peer.allowed_ips) out += "allowed_ip=" + ip + "\n";
  }
  return out + "\n";
}

Result<DeviceState> parseUapiGet(const std::string& text) {
  DeviceState state;
  std::istringstream in(text);
  std::string line;
  size_t n = 0;
  bool saw_errno = false;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) break;
    auto eq = line.find('=');
    if (eq == std::string::npos) return Error{"line " + std::to_string(n), "no '='"};
    std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    auto bad = [&] { return Error{"line " + std::to_string(n), "bad " + key}; };
    PeerState* peer = state.peers.empty() ? nullptr : &state.peers.back();
    if (key == "private_key") {
      state.has_private_key = value.find_first_not_of('0') != std::string::npos;
      auto k = keyFromHex(value);
      if (k && state.has_private_key) {
        auto pub = publicKeyOf(k.value());
        if (pub) state.public_key = keyToBase64(pub.value());
      }
      wipe(value);
      OPENSSL_cleanse(line.data(), line.size());
    } else if (key == "listen_port") {
      if (!toNumber(value, state.listen_port)) return bad();
    } else if (key == "public_key") {
      auto k = keyFromHex(value);
      if (!k) return bad();
      state.peers.emplace_back().config.public_key = keyToBase64(k.value());
    } else if (key == "errno") {
      saw_errno = true;
      if (value != "0") return Error{"errno", "the device answered errno " + value};
    } else if (peer == nullptr) {
      continue;  // fwmark and other device-wide keys
    } else if (key == "endpoint") {
      peer->config.endpoint = value;
    } else if (key == "allowed_ip") {
      peer->config.allowed_ips.push_back(value);
    } else if (key == "last_handshake_time_sec") {
      if (!toNumber(value, peer->last_handshake_sec)) return bad();
    } else if (key == "rx_bytes") {
      if (!toNumber(value, peer->rx_bytes)) return bad();
    } else if (key == "tx_bytes") {
      if (!toNumber(value, peer->tx_bytes)) return bad();
    } else if (key == "persistent_keepalive_interval") {
      if (!toNumber(value, peer->persistent_keepalive)) return bad();
    }
  }
  if (!saw_errno) return Error{"errno", "the answer ended without errno="};
  for (auto& p : state.peers) std::sort(p.config.allowed_ips.begin(), p.config.allowed_ips.end());
  return state;
}

std::optional<Error> parseUapiSetAnswer(const std::string& text) {
  if (text.rfind("errno=", 0) != 0) return Error{"errno", "not an answer to set=1"};
  std::string value = text.substr(6, text.find('\n') - 6);
  if (value != "0") return Error{"errno", "the device refused the configuration: errno " + value};
  return std::nullopt;
}

std::vector<std::string> wgSetArguments(const std::string& wg, const std::string& interface,
                                        const PeerPlan& plan, const DeviceSettings& settings,
                                        const std::string& private_key_file) {
  std::vector<std::string> argv = {wg, "set", interface};
  if (settings.private_key) argv.insert(argv.end(), {"private-key", private_key_file});
  if (settings.listen_port)
    argv.insert(argv.end(), {"listen-port", std::to_string(*settings.listen_port)});
  for (const auto& key : plan.remove) argv.insert(argv.end(), {"peer", key, "remove"});
  for (const auto& peer : plan.set) {
    argv.insert(argv.end(), {"peer", peer.public_key});
    if (!peer.endpoint.empty()) argv.insert(argv.end(), {"endpoint", peer.endpoint});
    argv.insert(argv.end(), {"persistent-keepalive", std::to_string(settings.persistent_keepalive),
                             "allowed-ips", joined(peer.allowed_ips, ',')});
  }
  return argv;
}

Result<DeviceState> parseWgDump(const std::string& text) {
  DeviceState state;
  std::istringstream in(text);
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    std::vector<std::string> f;
    std::istringstream fields(line);
    for (std::string x; std::getline(fields, x, '\t');) f.push_back(x);
    auto bad = [&] { return Error{"line " + std::to_string(n), "not a `wg show dump` line"}; };
    if (n == 1) {  // private-key public-key listen-port fwmark
      bool ok = f.size() == 4 && toNumber(f[2], state.listen_port);
      state.has_private_key = f.size() == 4 && f[0] != "(none)";
      state.public_key = f.size() == 4 && f[1] != "(none)" ? f[1] : "";
      for (auto& x : f) wipe(x);
      OPENSSL_cleanse(line.data(), line.size());
      if (!ok) return bad();
      continue;
    }
    // public-key preshared-key endpoint allowed-ips latest-handshake rx tx keepalive
    if (f.size() != 8) return bad();
    PeerState p;
    p.config.public_key = f[0];
    p.config.endpoint = f[2] == "(none)" ? "" : f[2];
    if (f[3] != "(none)") {
      std::istringstream ips(f[3]);
      for (std::string ip; std::getline(ips, ip, ',');) p.config.allowed_ips.push_back(ip);
      std::sort(p.config.allowed_ips.begin(), p.config.allowed_ips.end());
    }
    if (!toNumber(f[4], p.last_handshake_sec) || !toNumber(f[5], p.rx_bytes) ||
        !toNumber(f[6], p.tx_bytes))
      return bad();
    if (f[7] != "off" && !toNumber(f[7], p.persistent_keepalive)) return bad();
    state.peers.push_back(std::move(p));
  }
  if (n == 0) return Error{"line 1", "empty `wg show dump`"};
  return state;
}

std::string uapiSocketPath(const std::string& interface) {
  return "/var/run/wireguard/" + interface + ".sock";
}

Result<std::string> uapiExchange(const std::string& socket_path, const std::string& request,
                                 std::chrono::milliseconds timeout) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Error{"uapi", std::string("socket: ") + strerror(errno)};
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) return Error{"uapi", "socket path too long"};
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return Error{"uapi", socket_path + ": " + strerror(errno)};
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto wait = [&](short events) -> bool {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd.get(), events, 0};
    int n;
    while ((n = ::poll(&p, 1, static_cast<int>(left.count()))) < 0 && errno == EINTR) {
    }
    return n > 0;
  };
  for (size_t sent = 0; sent < request.size();) {
    if (!wait(POLLOUT)) return Error{"uapi", socket_path + ": timed out writing"};
    ssize_t n = ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error{"uapi", socket_path + ": " + strerror(errno)};
    sent += static_cast<size_t>(n);
  }
  std::string answer;
  char buf[4096];
  while (answer.size() < 2 || answer.compare(answer.size() - 2, 2, "\n\n") != 0) {
    if (!wait(POLLIN)) return Error{"uapi", socket_path + ": timed out reading"};
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error{"uapi", socket_path + ": " + strerror(errno)};
    if (n == 0) break;
    answer.append(buf, static_cast<size_t>(n));
    if (answer.size() > kMaxUapiAnswer) return Error{"uapi", "answer too long"};
  }
  return answer;
}

}  // namespace elasticdns::agent
