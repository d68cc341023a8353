// The ElasticDNS dashboard: reads GET /v1/status with the read token in the Authorization
// header (the token stays in sessionStorage: this tab only, never in a URL) and follows it with
// the status long-poll (?generation=G&wait=D): a request is made only when the previous one
// was answered, so the page never polls faster than central's own wake-ups.
"use strict";

const TOKEN_KEY = "elasticdns.token";
const WAIT = "30s";
const RETRY_MIN_MS = 1000, RETRY_MAX_MS = 30000;

let status = null;      // the last status document
let receivedAt = 0;     // when it arrived (ms, performance.now())
let running = false;
let controller = null;

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells, cls) {
  const tr = el("tr", null, cls);
  for (const c of cells) tr.appendChild(c instanceof Node ? c : el("td", c));
  return tr;
}

function header(names) {
  const tr = el("tr");
  for (const n of names) tr.appendChild(el("th", n));
  return tr;
}

function setState(text, cls) {
  const s = $("state");
  s.textContent = text;
  s.className = "state " + (cls || "");
}

function renderServices(doc) {
  const table = $("services");
  const servers = [...new Set(doc.services.flatMap((s) =>
      s.versions.flatMap((v) => v.servers.map((p) => p.server))))].sort();
  table.replaceChildren(header(["Service", "Version", "Latest", ...servers]));
  for (const s of doc.services) {
    if (s.versions.length === 0) {
      table.appendChild(row([s.name, "-", "", ...servers.map(() => "")]));
      continue;
    }
    for (const v of s.versions) {
      const cells = [el("td", s.name), el("td", v.name, v.latest ? "latest" : ""),
                     el("td", v.latest ? "latest" : "", "latest")];
      for (const server of servers) {
        const p = v.servers.find((x) => x.server === server);
        let text = "";
        if (p) text = p.running + " running" + (p.draining ? ", " + p.draining + " draining" : "");
        cells.push(el("td", text));
      }
      table.appendChild(row(cells));
    }
  }
}

function agentAge(a) {
  return a.last_seen_seconds + (performance.now() - receivedAt) / 1000;
}

function renderAgents(doc) {
  const table = $("agents");
  table.replaceChildren(header(["Agent", "Index", "Lag", "Last seen", "Version", "eBPF",
                                "Peers", "Traffic"]));
  const ttl = doc.agent_report_ttl_ms / 1000;
  for (const a of doc.agents) {
    if (a.index === null) {
      table.appendChild(row([a.server, "-", "-", "never", "-", "-", "-", "-"], "notseen"));
      continue;
    }
    const age = agentAge(a);
    const seen = a.polling || (a.seen && age <= ttl);
    const lastSeen = a.polling ? "now" : Math.floor(age) + "s ago" + (seen ? "" : " (not seen)");
    const ebpf = a.ebpf_identity ? (a.ebpf_redirect ? "identity+redirect" : "identity")
                                 : (a.ebpf_redirect ? "redirect" : "off");
    const peers = a.peers_total !== undefined ? a.peers_up + "/" + a.peers_total : "-";
    const traffic = a.traffic_generation !== undefined ? a.traffic_generation : "-";
    const cls = !seen ? "notseen" : a.lag > 0 ? "behind" : "";
    table.appendChild(row([el("td", a.server), el("td", a.index, "num"), el("td", a.lag, "num"),
                           lastSeen, a.version, ebpf, peers, traffic], cls));
  }
}

function renderDeploys(doc) {
  const box = $("deploys");
  box.replaceChildren();
  for (const s of doc.services) {
    if (!s.rollout.rolling) continue;
    const total = s.versions.reduce((n, v) => n + v.running + v.draining, 0);
    const latest = s.versions.filter((v) => v.latest).reduce((n, v) => n + v.running, 0);
    const div = el("div", null, "deploy");
    div.id = "deploy-" + s.name;
    const bar = el("progress");
    bar.max = total || 1;
    bar.value = latest;
    div.appendChild(bar);
    div.appendChild(el("span", s.rollout.verdict));
    box.appendChild(div);
  }
  if (!box.firstChild) box.appendChild(el("p", "No rolling deploy: every service runs one version.", "muted"));
}

function renderDatasources(doc) {
  const table = $("datasources");
  table.replaceChildren(header(["Type", "Group", "Primary", "Answers the type", "Addresses"]));
  for (const d of doc.datasources)
    table.appendChild(row([d.type, d.group, d.primary ? "yes" : "no",
                           d.answers_type ? "yes" : "", d.addresses.join(", ")]));
}

function render() {
  if (!status) return;
  renderDeploys(status);
  renderServices(status);
  renderAgents(status);
  renderDatasources(status);
}

function showLogin(message) {
  running = false;
  if (controller) controller.abort();
  $("views").hidden = true;
  $("login").hidden = false;
  $("forget").hidden = true;
  $("login-error").textContent = message || "";
  setState("not connected", "");
}

async function follow(token) {
  running = true;
  let generation = null;
  let retry = RETRY_MIN_MS;
  while (running) {
    const query = generation === null ? "" : "?generation=" + generation + "&wait=" + WAIT;
    controller = new AbortController();
    let response;
    try {
      response = await fetch("/v1/status" + query, {
        headers: { "Authorization": "Bearer " + token },
        cache: "no-store",
        signal: controller.signal,
      });
    } catch (e) {
      if (!running) return;
      setState("central unreachable; retrying", "down");
      await new Promise((r) => setTimeout(r, retry));
      retry = Math.min(retry * 2, RETRY_MAX_MS);
      continue;
    }
    if (response.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin("Central refused the token.");
      return;
    }
    if (!response.ok) {
      setState("central answered HTTP " + response.status + "; retrying", "down");
      await new Promise((r) => setTimeout(r, retry));
      retry = Math.min(retry * 2, RETRY_MAX_MS);
      continue;
    }
    retry = RETRY_MIN_MS;
    status = await response.json();
    receivedAt = performance.now();
    generation = status.generation;
    $("login").hidden = true;
    $("views").hidden = false;
    $("forget").hidden = false;
    setState("live · index " + status.index, "live");
    render();
  }
}

function start(token) {
  if (running) return;
  follow(token);
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const token = $("token").value.trim();
    $("token").value = "";
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    start(token);
  });
  $("forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    status = null;
    showLogin("");
  });
  // Ages and "not seen" move with time, not with central's answers: re-render locally.
  setInterval(() => { if (status && running) renderAgents(status); }, 1000);
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) start(saved);
});
