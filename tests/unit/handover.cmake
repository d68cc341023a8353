add_executable(handover_unit_tests ${CMAKE_CURRENT_LIST_DIR}/handover_test.cpp)
target_link_libraries(handover_unit_tests PRIVATE elasticdns_agent GTest::gtest_main)
gtest_discover_tests(handover_unit_tests TEST_PREFIX "unit.agent_handover." DISCOVERY_TIMEOUT 30)
