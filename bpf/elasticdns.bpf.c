// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* ElasticDNS cgroup programs, attached to the containers' parent cgroup:
 *   edns_egress                 cgroup_skb/egress: records who sent each packet to the agent's
 *                               DNS port (caller identity), before the agent can receive it.
 *   edns_connect4|6, edns_sendmsg4|6
 *                               rewrite destination port 53 to the agent and remember the
 *                               original destination in socket-local storage;
 *   edns_recvmsg4|6, edns_getpeername4|6
 *                               make the agent's replies appear to come from that original
 *                               destination (musl and glibc drop replies from other sources).
 * Configuration is `const volatile` (set by the loader before load). Every path that does not
 * do the expected thing bumps a per-CPU counter (enum edns_counter). */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "elasticdns_maps.h"

#define SOCK_DGRAM 2
#define SOCK_STREAM 1

/* The agent's address and DNS port, network byte order. */
const volatile __u16 cfg_agent_port = 0;
const volatile __u32 cfg_agent_v4 = 0;
const volatile __u8 cfg_has_v4 = 0;
const volatile __u32 cfg_agent_v6[4] = {0, 0, 0, 0};
const volatile __u8 cfg_has_v6 = 0;
/* Number of EDNS_EXCLUDE_SUBTREE entries in edns_exclude: 0 skips the ancestor walk. */
const volatile __u32 cfg_exclude_subtrees = 0;
/* Random and never 0, chosen by the loader for each load (the exclusion set is fixed per load):
 * a socket's cached exclusion decision counts only if it was made under this value. */
const volatile __u64 cfg_exclude_gen = 0;

#define IP_OFFSET_MASK 0x1fff /* fragment offset bits of iphdr.frag_off (RFC 791) */

static __always_inline void edns_record(struct __sk_buff *skb, struct edns_sock_key *key)
{
	__u64 cgroup_id = bpf_skb_cgroup_id(skb);
	__u32 idx = edns_slot_of(key);
	struct edns_id_slot *slot = bpf_map_lookup_elem(&edns_id_slots, &idx);
	struct edns_sock_val val;
	__u32 seq;

	if (!slot)
		return;
	seq = *(volatile __u32 *)&slot->seq;
	/* A socket that keeps sending (TCP, a reused UDP socket) finds its slot already right: no
	 * write, no cache-line bounce, no LRU access (its LRU entry was written with the slot). */
	if (!(seq & 1) && slot->cgroup_id == cgroup_id && slot->key.sport == key->sport &&
	    slot->key.proto == key->proto && slot->key.addr[3] == key->addr[3] &&
	    slot->key.addr[2] == key->addr[2] && slot->key.addr[1] == key->addr[1] &&
	    slot->key.addr[0] == key->addr[0]) {
		edns_count(EDNS_CNT_IDENTIFIED);
		return;
	}

	/* A new flow (or one whose slot another flow took): record it in the LRU fallback too. */
	val.cgroup_id = cgroup_id;
	val.time_ns = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&edns_sock_lru, key, &val, BPF_ANY))
		edns_count(EDNS_CNT_MAP_FULL);

	/* Try-lock: one writer at a time, so the reader's seqlock check is sound. A writer that
	 * loses leaves the slot to the winner; the LRU map has this packet's sender. */
	if ((seq & 1) || __sync_val_compare_and_swap(&slot->seq, seq, seq + 1) != seq) {
		edns_count(EDNS_CNT_SLOT_BUSY);
		return;
	}
	slot->key = *key;
	slot->cgroup_id = cgroup_id;
	__sync_fetch_and_add(&slot->seq, 1);
	edns_count(EDNS_CNT_IDENTIFIED);
}

/* Reads the IPv4/IPv6 header and the two ports of a packet into `key`/`dport`: 0 when done,
 * 1 when the packet is not UDP/TCP (or a non-first fragment), -1 when it cannot be parsed.
 * Locally sent UDP and TCP packets carry their headers in the linear area, which the program
 * reads directly; bpf_skb_load_bytes (a helper call each) is the fallback for the rest. */
static __always_inline int edns_parse(struct __sk_buff *skb, struct edns_sock_key *key,
				      __u16 *dport)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u16 ports[2]; /* source, destination; network byte order */
	__u32 l4_off;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data, copy;

		if ((void *)(ip + 1) > end) {
			if (bpf_skb_load_bytes(skb, 0, &copy, sizeof(copy)))
				return -1;
			ip = &copy;
		}
		if (ip->protocol != IPPROTO_UDP && ip->protocol != IPPROTO_TCP)
			return 1;
		if (ip->frag_off & bpf_htons(IP_OFFSET_MASK))
			return 1;
		key->addr[2] = bpf_htonl(0xffff);
		key->addr[3] = ip->saddr;
		key->proto = ip->protocol;
		l4_off = (ip->ihl & 0xf) * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data, copy;

		if ((void *)(ip6 + 1) > end) {
			if (bpf_skb_load_bytes(skb, 0, &copy, sizeof(copy)))
				return -1;
			ip6 = &copy;
		}
		/* DNS over IPv6 extension headers is not recorded. */
		if (ip6->nexthdr != IPPROTO_UDP && ip6->nexthdr != IPPROTO_TCP)
			return 1;
		__builtin_memcpy(key->addr, &ip6->saddr, sizeof(key->addr));
		key->proto = ip6->nexthdr;
		l4_off = sizeof(*ip6);
	} else {
		return 1;
	}
	if (data + l4_off + sizeof(ports) <= end) {
		__builtin_memcpy(ports, data + l4_off, sizeof(ports));
	} else if (bpf_skb_load_bytes(skb, l4_off, ports, sizeof(ports))) {
		return -1;
	}
	key->sport = ports[0];
	*dport = ports[1];
	return 0;
}

SEC("cgroup_skb/egress")
int edns_egress(struct __sk_buff *skb)
{
	struct edns_sock_key key = {};
	__u16 dport = 0;
	int parsed = edns_parse(skb, &key, &dport);

	if (parsed < 0) {
		edns_count(EDNS_CNT_NOT_PARSED);
		return 1;
	}
	if (parsed == 0 && dport == cfg_agent_port)
		edns_record(skb, &key);
	return 1;
}

/* True when the calling task's cgroup is excluded from redirect: listed itself, or below a
 * cgroup listed with EDNS_EXCLUDE_SUBTREE. */
static __always_inline int edns_excluded(void)
{
	__u64 id = bpf_get_current_cgroup_id();
	__u8 *how;

	if (bpf_map_lookup_elem(&edns_exclude, &id))
		return 1;
	if (!cfg_exclude_subtrees)
		return 0;
#pragma unroll
	for (int level = 0; level < EDNS_MAX_CGROUP_DEPTH; level++) {
		id = bpf_get_current_ancestor_cgroup_id(level);
		if (!id)
			break;
		how = bpf_map_lookup_elem(&edns_exclude, &id);
		if (how && *how == EDNS_EXCLUDE_SUBTREE)
			return 1;
	}
	return 0;
}

static __always_inline int edns_is_dns(struct bpf_sock_addr *ctx, __u32 port)
{
	__u32 type = ctx->type;

	if (port != bpf_htons(EDNS_DNS_PORT))
		return 0;
	return type == SOCK_DGRAM || type == SOCK_STREAM;
}

/* The socket's redirect state, created on its first DNS connect/sendmsg, or NULL when the
 * socket is not to be redirected (excluded, or no storage: counted). The exclusion decision is
 * made once per socket and program load (two helper calls and a hash lookup) and cached in
 * the storage, so a socket that sends many queries pays one storage lookup per send. */
static __always_inline struct edns_orig_dst *edns_redirect_state(struct bpf_sock_addr *ctx)
{
	struct edns_orig_dst *orig;

	orig = bpf_sk_storage_get(&edns_orig_dst, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!orig) {
		edns_count(EDNS_CNT_STORAGE_FAIL);
		return 0;
	}
	if (orig->excl_gen != cfg_exclude_gen) {
		orig->excluded = edns_excluded();
		orig->excl_gen = cfg_exclude_gen;
	}
	if (orig->excluded) {
		edns_count(EDNS_CNT_EXCLUDED);
		return 0;
	}
	return orig;
}

/* Rewrites an IPv4 destination of port 53 to the agent's IPv4 address. */
static __always_inline int edns_redirect4(struct bpf_sock_addr *ctx)
{
	__u32 port = ctx->user_port;
	__u32 ip4 = ctx->user_ip4;
	struct edns_orig_dst *orig;

	if (!edns_is_dns(ctx, port))
		return 1;
	orig = edns_redirect_state(ctx);
	if (!orig)
		return 1;
	if (!cfg_has_v4) {
		edns_count(EDNS_CNT_NO_TARGET);
		return 1;
	}
	orig->addr[0] = 0;
	orig->addr[1] = 0;
	orig->addr[2] = bpf_htonl(0xffff);
	orig->addr[3] = ip4;
	orig->port = (__u16)port;
	orig->valid = 1;
	ctx->user_ip4 = cfg_agent_v4;
	ctx->user_port = (__u32)cfg_agent_port;
	edns_count(EDNS_CNT_REDIRECTED);
	return 1;
}

/* Rewrites an IPv6 destination of port 53: a v4-mapped one (dual-stack socket) to the agent's
 * v4-mapped IPv4 address, a native one to the agent's IPv6 address. */
static __always_inline int edns_redirect6(struct bpf_sock_addr *ctx)
{
	__u32 port = ctx->user_port;
	__u32 ip6[4] = { ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3] };
	struct edns_orig_dst *orig;
	int mapped;

	if (!edns_is_dns(ctx, port))
		return 1;
	orig = edns_redirect_state(ctx);
	if (!orig)
		return 1;
	mapped = ip6[0] == 0 && ip6[1] == 0 && ip6[2] == bpf_htonl(0xffff);
	if (mapped ? !cfg_has_v4 : !cfg_has_v6) {
		edns_count(EDNS_CNT_NO_TARGET);
		return 1;
	}
	__builtin_memcpy(orig->addr, ip6, sizeof(ip6));
	orig->port = (__u16)port;
	orig->valid = 1;
	if (mapped) {
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = bpf_htonl(0xffff);
		ctx->user_ip6[3] = cfg_agent_v4;
	} else {
		ctx->user_ip6[0] = cfg_agent_v6[0];
		ctx->user_ip6[1] = cfg_agent_v6[1];
		ctx->user_ip6[2] = cfg_agent_v6[2];
		ctx->user_ip6[3] = cfg_agent_v6[3];
	}
	ctx->user_port = (__u32)cfg_agent_port;
	edns_count(EDNS_CNT_REDIRECTED);
	return 1;
}

/* Makes a reply from the agent appear to come from the socket's original destination. */
static __always_inline int edns_restore4(struct bpf_sock_addr *ctx)
{
	__u32 port = ctx->user_port;
	__u32 ip4 = ctx->user_ip4;
	struct edns_orig_dst *orig;

	if (!cfg_has_v4 || ip4 != cfg_agent_v4 || port != (__u32)cfg_agent_port)
		return 1;
	orig = bpf_sk_storage_get(&edns_orig_dst, ctx->sk, 0, 0);
	if (!orig || !orig->valid || orig->addr[2] != bpf_htonl(0xffff))
		return 1;
	ctx->user_ip4 = orig->addr[3];
	ctx->user_port = (__u32)orig->port;
	edns_count(EDNS_CNT_RESTORED);
	return 1;
}

static __always_inline int edns_restore6(struct bpf_sock_addr *ctx)
{
	__u32 port = ctx->user_port;
	__u32 ip6[4] = { ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3] };
	struct edns_orig_dst *orig;
	int from_agent;

	if (port != (__u32)cfg_agent_port)
		return 1;
	if (ip6[0] == 0 && ip6[1] == 0 && ip6[2] == bpf_htonl(0xffff))
		from_agent = cfg_has_v4 && ip6[3] == cfg_agent_v4;
	else
		from_agent = cfg_has_v6 && ip6[0] == cfg_agent_v6[0] && ip6[1] == cfg_agent_v6[1] &&
			     ip6[2] == cfg_agent_v6[2] && ip6[3] == cfg_agent_v6[3];
	if (!from_agent)
		return 1;
	orig = bpf_sk_storage_get(&edns_orig_dst, ctx->sk, 0, 0);
	if (!orig || !orig->valid)
		return 1;
	ctx->user_ip6[0] = orig->addr[0];
	ctx->user_ip6[1] = orig->addr[1];
	ctx->user_ip6[2] = orig->addr[2];
	ctx->user_ip6[3] = orig->addr[3];
	ctx->user_port = (__u32)orig->port;
	edns_count(EDNS_CNT_RESTORED);
	return 1;
}

SEC("cgroup/connect4")
int edns_connect4(struct bpf_sock_addr *ctx) { return edns_redirect4(ctx); }

SEC("cgroup/sendmsg4")
int edns_sendmsg4(struct bpf_sock_addr *ctx) { return edns_redirect4(ctx); }

SEC("cgroup/recvmsg4")
int edns_recvmsg4(struct bpf_sock_addr *ctx) { return edns_restore4(ctx); }

SEC("cgroup/getpeername4")
int edns_getpeername4(struct bpf_sock_addr *ctx) { return edns_restore4(ctx); }

SEC("cgroup/connect6")
int edns_connect6(struct bpf_sock_addr *ctx) { return edns_redirect6(ctx); }

SEC("cgroup/sendmsg6")
int edns_sendmsg6(struct bpf_sock_addr *ctx) { return edns_redirect6(ctx); }

SEC("cgroup/recvmsg6")
int edns_recvmsg6(struct bpf_sock_addr *ctx) { return edns_restore6(ctx); }

SEC("cgroup/getpeername6")
int edns_getpeername6(struct bpf_sock_addr *ctx) { return edns_restore6(ctx); }

char LICENSE[] SEC("license") = "Dual BSD/GPL";
