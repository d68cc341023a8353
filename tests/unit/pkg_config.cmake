add_executable(pkg_config_unit_tests ${CMAKE_CURRENT_LIST_DIR}/pkg_config_test.cpp)
target_compile_definitions(pkg_config_unit_tests PRIVATE
  ELASTICDNS_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
target_link_libraries(pkg_config_unit_tests PRIVATE elasticdns_agent elasticdns_central
  GTest::gtest_main)
gtest_discover_tests(pkg_config_unit_tests TEST_PREFIX "unit.pkg_config." DISCOVERY_TIMEOUT 30)
