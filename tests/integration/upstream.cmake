# The forwarder against a real unbound on loopback (agent/upstream.*), and sync against a real
# central (agent/sync.*).
add_executable(upstream_integration_tests
  ${CMAKE_CURRENT_LIST_DIR}/upstream_unbound_test.cpp)
target_link_libraries(upstream_integration_tests PRIVATE elasticdns_agent PkgConfig::LDNS
  GTest::gtest_main)
gtest_discover_tests(upstream_integration_tests TEST_PREFIX "integration.upstream."
  DISCOVERY_TIMEOUT 30)
