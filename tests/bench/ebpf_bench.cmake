# eBPF benchmark (issue 4): built, not run by ctest. See tests/bench/ebpf_bench.sh.
if(ELASTICDNS_BPF)
  add_executable(ebpf_bench_client ${CMAKE_CURRENT_LIST_DIR}/ebpf_bench_client.cpp)
  add_executable(ebpf_selfloop ${CMAKE_CURRENT_LIST_DIR}/ebpf_selfloop.cpp)
  # Empty programs on the same hooks (FLOOR=1): the cost of the hook machinery alone.
  add_custom_command(
    OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/ebpf_floor.bpf.o
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -Wall -Werror
            -I/usr/include/${CMAKE_LIBRARY_ARCHITECTURE}
            -c ${CMAKE_CURRENT_LIST_DIR}/ebpf_floor.bpf.c -o ${CMAKE_CURRENT_BINARY_DIR}/ebpf_floor.bpf.o
    DEPENDS ${CMAKE_CURRENT_LIST_DIR}/ebpf_floor.bpf.c
    COMMENT "BPF ebpf_floor.bpf.o"
    VERBATIM)
  add_custom_target(ebpf_floor_object ALL DEPENDS ${CMAKE_CURRENT_BINARY_DIR}/ebpf_floor.bpf.o)
endif()
