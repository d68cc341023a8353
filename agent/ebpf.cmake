# eBPF loader and caller registry (issue 4). Only ebpf.cpp includes the generated skeleton.
if(ELASTICDNS_BPF)
  target_sources(elasticdns_agent PRIVATE ${CMAKE_CURRENT_LIST_DIR}/ebpf.cpp
                                          ${CMAKE_CURRENT_LIST_DIR}/callers.cpp)
  target_link_libraries(elasticdns_agent PUBLIC PkgConfig::LIBBPF spdlog::spdlog Boost::headers
                        PRIVATE elasticdns_bpf_skel)
endif()
