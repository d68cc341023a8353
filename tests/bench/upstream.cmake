# Forwarder benchmark (built, not run by ctest): build/tests/upstream_bench [iterations]
add_executable(upstream_bench ${CMAKE_CURRENT_LIST_DIR}/upstream_bench.cpp)
target_link_libraries(upstream_bench PRIVATE elasticdns_agent PkgConfig::LDNS)
