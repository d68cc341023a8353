# Central's modules: router (no sockets, real SQLite), state, service.yml intake, config, watchers.
add_executable(central_unit_tests
  ${CMAKE_CURRENT_LIST_DIR}/central_router_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/central_intake_test.cpp)
target_link_libraries(central_unit_tests PRIVATE elasticdns_central GTest::gtest_main)
target_compile_definitions(central_unit_tests PRIVATE ELASTICDNS_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
gtest_discover_tests(central_unit_tests TEST_PREFIX "unit.central." DISCOVERY_TIMEOUT 30)
