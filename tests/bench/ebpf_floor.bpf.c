// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* Programs that do nothing, attached by tests/bench/ebpf_bench.sh (FLOOR=1) to the same hooks
 * as bpf/elasticdns.bpf.c: what the kernel's hook machinery alone costs per query, apart from
 * what the ElasticDNS programs do. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("cgroup_skb/egress")
int floor_egress(struct __sk_buff *skb) { return 1; }

SEC("cgroup/sendmsg4")
int floor_sendmsg4(struct bpf_sock_addr *ctx) { return 1; }

SEC("cgroup/recvmsg4")
int floor_recvmsg4(struct bpf_sock_addr *ctx) { return 1; }

char LICENSE[] SEC("license") = "Dual BSD/GPL";
