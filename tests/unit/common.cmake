add_executable(common_unit_tests
  ${CMAKE_CURRENT_LIST_DIR}/model_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/validate_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/protocol_test.cpp)
target_link_libraries(common_unit_tests PRIVATE elasticdns_common GTest::gtest_main)
gtest_discover_tests(common_unit_tests TEST_PREFIX "unit.common." DISCOVERY_TIMEOUT 30)
