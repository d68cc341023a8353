# Unit tests of the forwarder, its answer cache, and sync (agent/upstream.*, cache.*, sync.*).
add_executable(upstream_unit_tests
  ${CMAKE_CURRENT_LIST_DIR}/upstream_cache_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/upstream_forwarder_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/upstream_sync_test.cpp)
target_link_libraries(upstream_unit_tests PRIVATE elasticdns_agent PkgConfig::LDNS GTest::gtest_main)
gtest_discover_tests(upstream_unit_tests TEST_PREFIX "unit.upstream." DISCOVERY_TIMEOUT 30)
