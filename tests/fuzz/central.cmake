# Central's intake fuzz target, replayed on its corpus by ctest in every run.
add_executable(central_intake_fuzz_replay
  ${CMAKE_CURRENT_LIST_DIR}/central_intake_fuzz.cpp
  ${CMAKE_CURRENT_LIST_DIR}/central_replay_main.cpp)
target_link_libraries(central_intake_fuzz_replay PRIVATE elasticdns_central)
add_test(NAME fuzz.central_intake
  COMMAND central_intake_fuzz_replay ${CMAKE_CURRENT_LIST_DIR}/corpus/central_intake)
# A libFuzzer build for finding new inputs (not run by ctest):
#   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
#     tests/fuzz/central_intake_fuzz.cpp central/*.cpp (but main.cpp, ctl_main.cpp) \
#     include/elasticdns/*.cpp -lsqlite3 -lyaml-cpp -lspdlog -lfmt -o central_intake_fuzzer
