# eBPF benchmark (issue 4): built, not run by ctest. See tests/bench/ebpf_bench.sh.
if(ELASTICDNS_BPF)
  add_executable(ebpf_bench_client ${CMAKE_CURRENT_LIST_DIR}/ebpf_bench_client.cpp)
endif()
