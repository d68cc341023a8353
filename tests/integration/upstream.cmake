# The forwarder against a real unbound on loopback (agent/upstream.*), and sync against a real
# central (agent/sync.*).
add_executable(upstream_integration_tests
  ${CMAKE_CURRENT_LIST_DIR}/upstream_unbound_test.cpp)
target_link_libraries(upstream_integration_tests PRIVATE elasticdns_agent PkgConfig::LDNS
  GTest::gtest_main)
gtest_discover_tests(upstream_integration_tests TEST_PREFIX "integration.upstream."
  DISCOVERY_TIMEOUT 30)

if(TARGET elasticdns-central)
  add_executable(upstream_central_sync_tests ${CMAKE_CURRENT_LIST_DIR}/upstream_central_test.cpp)
  target_link_libraries(upstream_central_sync_tests PRIVATE elasticdns_agent GTest::gtest_main)
  target_compile_definitions(upstream_central_sync_tests PRIVATE
    ELASTICDNS_CENTRAL_BIN="$<TARGET_FILE:elasticdns-central>")
  add_dependencies(upstream_central_sync_tests elasticdns-central)
  gtest_discover_tests(upstream_central_sync_tests TEST_PREFIX "integration.upstream."
    DISCOVERY_TIMEOUT 30)
endif()
