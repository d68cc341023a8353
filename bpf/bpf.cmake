# eBPF programs -> object (clang -target bpf) -> skeleton header (bpftool gen skeleton).
# `elasticdns_bpf_skel` (INTERFACE) puts the generated `elasticdns.skel.h` on the include path of
# whatever links it; only agent/ebpf.cpp includes it.
find_program(BPF_CLANG NAMES clang clang-16 clang-15 clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

# asm/types.h lives in the multiarch include directory, which clang -target bpf does not search.
if(CMAKE_LIBRARY_ARCHITECTURE)
  set(bpf_arch_include /usr/include/${CMAKE_LIBRARY_ARCHITECTURE})
else()
  execute_process(COMMAND uname -m OUTPUT_VARIABLE bpf_machine OUTPUT_STRIP_TRAILING_WHITESPACE)
  set(bpf_arch_include /usr/include/${bpf_machine}-linux-gnu)
endif()

set(bpf_out ${CMAKE_CURRENT_BINARY_DIR})
set(bpf_src ${CMAKE_CURRENT_SOURCE_DIR}/elasticdns.bpf.c)
set(bpf_deps ${bpf_src} ${CMAKE_CURRENT_SOURCE_DIR}/elasticdns_maps.h
    ${PROJECT_SOURCE_DIR}/include/elasticdns/bpf_abi.h)

# -mcpu=v3: the identity slots' seqlock uses BPF atomics (cmpxchg, fetch-add).
add_custom_command(
  OUTPUT ${bpf_out}/elasticdns.bpf.o
  COMMAND ${BPF_CLANG} -g -O2 -target bpf -mcpu=v3 -Wall -Werror
          -I${bpf_arch_include} -I${PROJECT_SOURCE_DIR}/include -I${CMAKE_CURRENT_SOURCE_DIR}
          -c ${bpf_src} -o ${bpf_out}/elasticdns.bpf.o
  DEPENDS ${bpf_deps}
  COMMENT "BPF elasticdns.bpf.o"
  VERBATIM)
add_custom_command(
  OUTPUT ${bpf_out}/elasticdns.skel.h
  COMMAND ${BPFTOOL} gen skeleton ${bpf_out}/elasticdns.bpf.o name edns_bpf > ${bpf_out}/elasticdns.skel.h
  DEPENDS ${bpf_out}/elasticdns.bpf.o
  COMMENT "bpftool gen skeleton elasticdns.skel.h")
add_custom_target(elasticdns_bpf_objects DEPENDS ${bpf_out}/elasticdns.skel.h)

add_library(elasticdns_bpf_skel INTERFACE)
add_dependencies(elasticdns_bpf_skel elasticdns_bpf_objects)
target_include_directories(elasticdns_bpf_skel INTERFACE ${bpf_out}
                                                         ${PROJECT_SOURCE_DIR}/include)
target_link_libraries(elasticdns_bpf_skel INTERFACE PkgConfig::LIBBPF)
