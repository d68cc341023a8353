# Unit tests of the agent's DNS side: policy tables, wire codec, zone answers, config.
add_executable(agent_unit_tests
  ${CMAKE_CURRENT_LIST_DIR}/agent_policy_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/agent_wire_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/agent_answers_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/agent_config_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/agent_rate_limiter_test.cpp)
target_compile_definitions(agent_unit_tests PRIVATE
  ELASTICDNS_README="${PROJECT_SOURCE_DIR}/README.md")
target_link_libraries(agent_unit_tests PRIVATE elasticdns_agent GTest::gtest_main)
gtest_discover_tests(agent_unit_tests TEST_PREFIX "unit.agent." DISCOVERY_TIMEOUT 30)
