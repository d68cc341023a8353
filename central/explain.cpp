#include "central/explain.hpp"

#include <map>
#include <set>
#include <vector>

#include "elasticdns/policy.hpp"

namespace elasticdns::central {
namespace {

using nlohmann::json;

// The containers' addresses, IPv4 then IPv6, in container id order (as the zone lists them).
json addressesOf(const std::vector<const model::Container*>& containers) {
  json out = json::array();
  for (const auto* c : containers) {
    if (!c->address.empty()) out.push_back(c->address);
    if (!c->address6.empty()) out.push_back(c->address6);
  }
  return out;
}

json callerJson(const model::Container* caller, std::string_view id) {
  if (caller == nullptr) return {{"id", id}, {"known", false}};
  return {{"id", caller->id},
          {"known", true},
          {"service", caller->service},
          {"version", caller->version},
          {"server", caller->server}};
}

json explainService(const model::Topology& t, const std::string& name,
                    const model::Container* caller) {
  model::Service svc;
  svc.name = name;
  if (auto it = t.services.find(name); it != t.services.end()) svc = it->second;
  const bool versioned = svc.dns_behaviour == model::DnsBehaviour::kVersioned;
  // Running containers by version generation, ascending (draining ones are never answered).
  std::map<uint64_t, std::vector<const model::Container*>> running;
  for (const auto& [id, c] : t.containers)
    if (c.service == name && c.state == model::ContainerState::kRunning)
      running[t.generationOf(c.version)].push_back(&c);
  json j = {{"name", name},
            {"kind", "service"},
            {"policy", model::toString(svc.dns_behaviour)},
            {"load_balancing", model::toString(svc.load_balancing)}};
  if (running.empty()) {
    j["addresses"] = json::array();
    j["why"] = "no running container";
    return j;
  }
  std::vector<uint64_t> gens;
  for (const auto& [g, list] : running) gens.push_back(g);
  const uint64_t caller_gen = caller ? t.generationOf(caller->version) : 0;
  const size_t v = policy::chooseVersion(gens, caller_gen, versioned);
  j["why"] = !versioned              ? "latest (non-versioned)"
             : caller_gen == 0       ? "latest (unknown caller)"
             : gens[v] == caller_gen ? "own version"
             : gens[v] < caller_gen  ? "newest older version"
                                     : "latest (every version is newer)";
  const auto& chosen = running[gens[v]];
  j["version"] = chosen.front()->version;
  std::vector<const model::Container*> answer = chosen;
  if (svc.load_balancing == model::LoadBalancing::kClosest) {
    // Server ids as the zone numbers them: any stable numbering gives the same choice.
    std::map<std::string, uint32_t> ids;
    std::vector<uint32_t> servers;
    for (const auto* c : chosen) {
      auto [it, fresh] = ids.emplace(c->server, static_cast<uint32_t>(ids.size()));
      if (fresh) servers.push_back(it->second);
    }
    auto own = caller ? ids.find(caller->server) : ids.end();
    auto i = own == ids.end() ? std::nullopt : policy::chooseClosest(servers, own->second);
    if (i) {
      std::vector<const model::Container*> local;
      for (const auto* c : chosen)
        if (c->server == caller->server) local.push_back(c);
      answer = local;
      j["note"] = "closest: the containers on the caller's server " + caller->server;
    } else {
      j["note"] = "closest: none on the caller's server, so all of them";
    }
  } else if (svc.load_balancing == model::LoadBalancing::kSticky) {
    j["note"] =
        "sticky: the caller gets one of these and keeps it for the sticky window; the pin lives "
        "in the caller's agent (dig TXT _explain." +
        name + ".DOMAIN on that host shows it)";
  } else {
    j["note"] = "roundrobin: all of these, rotated on every answer";
  }
  j["addresses"] = addressesOf(answer);
  return j;
}

// `<group>.<type>` or `<type>` (the primary group, else `default`), as the zone answers them.
std::optional<json> explainDatasource(const model::Topology& t, const std::string& name) {
  const model::Datasource* found = nullptr;
  if (auto dot = name.find('.'); dot != std::string::npos) {
    auto it = t.datasources.find(name.substr(dot + 1) + "/" + name.substr(0, dot));
    if (it != t.datasources.end()) found = &it->second;
  } else {
    for (const auto& [key, d] : t.datasources) {
      if (d.type != name) continue;
      if (d.primary && (found == nullptr || !found->primary)) found = &d;
      if (!d.primary && d.group == "default" && found == nullptr) found = &d;
    }
  }
  if (found == nullptr) return std::nullopt;
  return json{{"name", name},
              {"kind", "datasource"},
              {"group", found->group},
              {"why", found->primary ? "the primary group" : "the group"},
              {"note", "datasources answer every caller alike"},
              {"addresses", found->addresses}};
}

}  // namespace

Result<json> explainAnswer(const model::Topology& t, std::string_view name_in,
                           std::string_view container_id) {
  std::string name(name_in);
  while (!name.empty() && name.back() == '.') name.pop_back();
  const model::Container* caller = nullptr;
  if (auto it = t.containers.find(std::string(container_id)); it != t.containers.end())
    caller = &it->second;
  auto isService = [&](const std::string& n) {
    if (t.services.count(n)) return true;
    for (const auto& [id, c] : t.containers)
      if (c.service == n) return true;
    return false;
  };
  // The name, then its shorter forms with the domain left off: api.cloud66.local → api.
  for (std::string n = name; !n.empty();) {
    if (isService(n)) {
      json j = explainService(t, n, caller);
      j["caller"] = callerJson(caller, container_id);
      return j;
    }
    if (auto d = explainDatasource(t, n)) {
      (*d)["caller"] = callerJson(caller, container_id);
      return *d;
    }
    auto dot = n.rfind('.');
    n = dot == std::string::npos ? "" : n.substr(0, dot);
  }
  return Error{"name", "'" + name + "' is neither a service nor a datasource of the topology"};
}

std::string renderExplanation(const json& e) {
  std::string out;
  const json& c = e["caller"];
  if (c.value("known", false))
    out += "caller:   " + c["id"].get<std::string>() + " (" + c["service"].get<std::string>() +
           " " + c["version"].get<std::string>() + " on " + c["server"].get<std::string>() + ")\n";
  else
    out += "caller:   " + c["id"].get<std::string>() +
           " is not a container central knows: answered as an unknown caller\n";
  out += "name:     " + e["name"].get<std::string>() + " (" + e["kind"].get<std::string>() + ")\n";
  if (e.contains("policy"))
    out += "policy:   " + e["policy"].get<std::string>() + ", load_balancing " +
           e["load_balancing"].get<std::string>() + "\n";
  std::string choice = e.contains("version") ? "version " + e["version"].get<std::string>() + ": "
                       : e.contains("group") ? "group " + e["group"].get<std::string>() + ": "
                                             : "";
  out += "choice:   " + choice + e["why"].get<std::string>() + "\n";
  std::string addresses;
  for (const auto& a : e["addresses"])
    addresses += (addresses.empty() ? "" : " ") + a.get<std::string>();
  out += "answer:   " + (addresses.empty() ? std::string("(none)") : addresses) + "\n";
  if (e.contains("note")) out += "note:     " + e["note"].get<std::string>() + "\n";
  return out;
}

}  // namespace elasticdns::central
