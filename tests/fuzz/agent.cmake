# Fuzz target of the agent's query path; its corpus is replayed by ctest in every run.
add_executable(agent_query_replay
  ${CMAKE_CURRENT_LIST_DIR}/agent_query_fuzz.cpp
  ${CMAKE_CURRENT_LIST_DIR}/agent_query_replay.cpp)
target_link_libraries(agent_query_replay PRIVATE elasticdns_agent)
add_test(NAME fuzz.agent.query_replay
  COMMAND agent_query_replay ${CMAKE_CURRENT_LIST_DIR}/query_corpus)
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang" AND ELASTICDNS_FUZZ)
  add_executable(agent_query_fuzz ${CMAKE_CURRENT_LIST_DIR}/agent_query_fuzz.cpp)
  target_compile_options(agent_query_fuzz PRIVATE -fsanitize=fuzzer)
  target_link_options(agent_query_fuzz PRIVATE -fsanitize=fuzzer)
  target_link_libraries(agent_query_fuzz PRIVATE elasticdns_agent)
endif()
