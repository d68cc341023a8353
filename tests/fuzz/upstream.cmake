# Fuzz targets of the forwarder (upstream replies) and of sync (central's response bodies); their
# corpora are replayed by ctest in every run. With clang and -DELASTICDNS_FUZZ=ON, libFuzzer
# binaries are built too: upstream_reply_fuzz CORPUS_DIR, upstream_sync_fuzz CORPUS_DIR.
foreach(target reply sync)
  add_executable(upstream_${target}_replay
    ${CMAKE_CURRENT_LIST_DIR}/upstream_${target}_fuzz.cpp
    ${CMAKE_CURRENT_LIST_DIR}/upstream_fuzz_replay.cpp)
  target_link_libraries(upstream_${target}_replay PRIVATE elasticdns_agent)
  add_test(NAME fuzz.upstream.${target}_replay
    COMMAND upstream_${target}_replay ${CMAKE_CURRENT_LIST_DIR}/upstream_${target}_corpus)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang" AND ELASTICDNS_FUZZ)
    # The code under test is compiled into the fuzzer itself, so libFuzzer sees its coverage.
    add_executable(upstream_${target}_fuzz ${CMAKE_CURRENT_LIST_DIR}/upstream_${target}_fuzz.cpp
      ${PROJECT_SOURCE_DIR}/agent/cache.cpp ${PROJECT_SOURCE_DIR}/agent/sync.cpp
      ${PROJECT_SOURCE_DIR}/include/elasticdns/protocol.cpp
      ${PROJECT_SOURCE_DIR}/include/elasticdns/validate.cpp)
    target_compile_options(upstream_${target}_fuzz PRIVATE -fsanitize=fuzzer)
    target_link_options(upstream_${target}_fuzz PRIVATE -fsanitize=fuzzer)
    target_link_libraries(upstream_${target}_fuzz PRIVATE elasticdns_agent)
  endif()
endforeach()
