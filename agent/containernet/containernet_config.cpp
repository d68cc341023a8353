#include "agent/containernet/containernet_config.hpp"

#include <filesystem>
#include <set>

#include "agent/util/whole_number.hpp"
#include "elasticdns/validate.hpp"

namespace elasticdns::agent {
namespace {

const std::set<std::string> kContainerNetKeys = {
    "enabled", "interface",      "listen_port",  "key_file", "endpoint",
    "mtu",     "implementation", "wireguard_go", "bridge",   "docker_network"};

Error err(const std::string& key, const std::string& reason) {
  return Error{"containernet/" + key, reason};
}

Result<std::string> scalar(const YAML::Node& n, const std::string& key) {
  if (!n.IsScalar()) return err(key, "must be a scalar");
  return n.Scalar();
}

// A whole number from `min` to `max`.
Result<uint32_t> number(const YAML::Node& n, const std::string& key, uint32_t min, uint32_t max) {
  auto v = scalar(n, key);
  if (!v) return v.error();
  return parseWholeNumber(v.value(), "containernet/" + key, min, max);
}

// A Linux interface name: 1..15 characters, no '/', no whitespace, not "." or "..".
std::optional<Error> checkInterfaceName(const std::string& name, const std::string& key,
                                        bool may_be_empty) {
  if (name.empty()) {
    if (may_be_empty) return std::nullopt;
    return err(key, "must not be empty");
  }
  if (name.size() > kMaxInterfaceName) return err(key, "longer than 15 characters: '" + name + "'");
  if (name == "." || name == ".." || name.find_first_of("/: \t\n") != std::string::npos)
    return err(key, "not an interface name: '" + name + "'");
  return std::nullopt;
}

// A Docker network name ([a-zA-Z0-9][a-zA-Z0-9_.-]*, as Docker accepts), up to 64 characters;
// "" = no Docker network.
std::optional<Error> checkDockerNetworkName(const std::string& name) {
  if (name.empty()) return std::nullopt;
  auto ok = [](char ch, bool first) {
    bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
    return alnum || (!first && (ch == '_' || ch == '.' || ch == '-'));
  };
  bool valid = name.size() <= 64;
  for (size_t i = 0; valid && i < name.size(); ++i) valid = ok(name[i], i == 0);
  if (!valid)
    return err("docker_network",
               "must be \"\" or a Docker network name ([a-zA-Z0-9][a-zA-Z0-9_.-]*, up to 64): '" +
                   name + "'");
  return std::nullopt;
}

std::optional<Error> parseNames(const YAML::Node& n, ContainerNetConfig& c) {
  if (n["interface"]) {
    auto v = scalar(n["interface"], "interface");
    if (!v) return v.error();
    if (auto e = checkInterfaceName(v.value(), "interface", false)) return e;
    c.interface = v.value();
  }
  if (n["bridge"]) {
    auto v = scalar(n["bridge"], "bridge");
    if (!v) return v.error();
    if (auto e = checkInterfaceName(v.value(), "bridge", true)) return e;
    if (v.value() == c.interface) return err("bridge", "must differ from interface");
    c.bridge = v.value();
  }
  if (n["docker_network"]) {
    auto v = scalar(n["docker_network"], "docker_network");
    if (!v) return v.error();
    if (auto e = checkDockerNetworkName(v.value())) return e;
    c.docker_network = v.value();
  }
  if (n["key_file"]) {
    auto v = scalar(n["key_file"], "key_file");
    if (!v) return v.error();
    if (!v->empty() && v->front() != '/') return err("key_file", "must be an absolute path");
    c.key_file = v.value();
  }
  if (n["wireguard_go"]) {
    auto v = scalar(n["wireguard_go"], "wireguard_go");
    if (!v) return v.error();
    if (v->empty()) return err("wireguard_go", "must not be empty");
    c.wireguard_go = v.value();
  }
  return std::nullopt;
}

std::optional<Error> parseNumbers(const YAML::Node& n, ContainerNetConfig& c) {
  if (n["listen_port"]) {
    auto v = number(n["listen_port"], "listen_port", 1, 65535);
    if (!v) return v.error();
    c.listen_port = static_cast<uint16_t>(v.value());
  }
  if (n["mtu"]) {
    auto s = scalar(n["mtu"], "mtu");
    if (!s) return s.error();
    if (s.value() == "auto") {
      c.mtu = 0;
    } else {
      auto v = number(n["mtu"], "mtu", kMinContainerNetMtu, kMaxContainerNetMtu);
      if (!v) return err("mtu", "must be auto or a whole number 1280..9000: '" + s.value() + "'");
      c.mtu = v.value();
    }
  }
  return std::nullopt;
}

std::optional<Error> parseChoices(const YAML::Node& n, ContainerNetConfig& c) {
  if (n["enabled"]) {
    auto v = scalar(n["enabled"], "enabled");
    if (!v) return v.error();
    if (v.value() == "true" || v.value() == "yes")
      c.enabled = true;
    else if (v.value() == "false" || v.value() == "no")
      c.enabled = false;
    else
      return err("enabled", "must be true or false");
  }
  if (n["implementation"]) {
    auto v = scalar(n["implementation"], "implementation");
    if (!v) return v.error();
    if (v.value() == "auto")
      c.implementation = WireGuardImplementation::kAuto;
    else if (v.value() == "kernel")
      c.implementation = WireGuardImplementation::kKernel;
    else if (v.value() == "userspace")
      c.implementation = WireGuardImplementation::kUserspace;
    else
      return err("implementation", "must be auto, kernel or userspace");
  }
  if (n["endpoint"]) {
    auto v = scalar(n["endpoint"], "endpoint");
    if (!v) return v.error();
    if (!v->empty() && !validate::isEndpoint(v.value()))
      return err("endpoint", "must be IPV4:PORT or [IPV6]:PORT: '" + v.value() + "'");
    c.endpoint = v.value();
  }
  return std::nullopt;
}

}  // namespace

Result<ContainerNetConfig> parseContainerNetConfig(const YAML::Node& n) {
  ContainerNetConfig c;
  if (n.IsNull()) return c;
  if (!n.IsMap()) return Error{"containernet", "must be a mapping"};
  for (const auto& kv : n) {
    if (!kv.first.IsScalar()) return Error{"containernet", "keys must be strings"};
    if (!kContainerNetKeys.count(kv.first.Scalar())) return err(kv.first.Scalar(), "unknown key");
  }
  for (auto parse : {parseChoices, parseNames, parseNumbers})
    if (auto e = parse(n, c)) return *e;
  return c;
}

std::string keyFileOf(const ContainerNetConfig& c, const std::string& state_dir) {
  if (!c.key_file.empty()) return c.key_file;
  const std::filesystem::path dir = state_dir.empty() ? "/var/lib/elasticdns" : state_dir;
  return (dir / "containernet.key").string();
}

std::string pidFileOf(const ContainerNetConfig& c, const std::string& state_dir) {
  return (std::filesystem::path(keyFileOf(c, state_dir)).parent_path() / "containernet.pid")
      .string();
}

}  // namespace elasticdns::agent
