# eBPF loader and caller registry (issue 4). Only ebpf.cpp includes the generated skeleton.
# With -DELASTICDNS_BPF=OFF, ebpf.cpp builds a stub whose start() says so (the agent then runs
# with source-address identity).
if(ELASTICDNS_BPF)
  target_sources(elasticdns_agent PRIVATE ${CMAKE_CURRENT_LIST_DIR}/ebpf.cpp
                                          ${CMAKE_CURRENT_LIST_DIR}/callers.cpp)
  target_link_libraries(elasticdns_agent PUBLIC PkgConfig::LIBBPF spdlog::spdlog Boost::headers
                        PRIVATE elasticdns_bpf_skel)
else()
  target_sources(elasticdns_agent PRIVATE ${CMAKE_CURRENT_LIST_DIR}/ebpf.cpp)
  set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/ebpf.cpp PROPERTIES
                              COMPILE_DEFINITIONS ELASTICDNS_NO_BPF)
  target_link_libraries(elasticdns_agent PUBLIC Boost::headers)
endif()
