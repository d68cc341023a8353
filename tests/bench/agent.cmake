# Agent benchmarks (built, not run by ctest): the query-path micro benchmark; the side-by-side
# run against other DNS servers is tests/bench/agent_peers.sh.
add_executable(agent_parse_bench ${CMAKE_CURRENT_LIST_DIR}/agent_parse_bench.cpp)
target_link_libraries(agent_parse_bench PRIVATE elasticdns_agent PkgConfig::LDNS)
