# Fuzz targets of the forwarder (upstream replies) and of sync (central's response bodies); their
# corpora are replayed by ctest in every run. With clang and -DELASTICDNS_FUZZ=ON, libFuzzer
# binaries are built too: upstream_reply_fuzz CORPUS_DIR, upstream_sync_fuzz CORPUS_DIR.
foreach(target reply sync)
  # The code under test is compiled into the libFuzzer binary itself, so it sees its coverage.
  elasticdns_fuzz_target(upstream_${target} TEST fuzz.upstream.${target}_replay MUTATE
    SOURCE ${CMAKE_CURRENT_LIST_DIR}/upstream_${target}_fuzz.cpp
    CORPUS ${CMAKE_CURRENT_LIST_DIR}/upstream_${target}_corpus
    LIBS elasticdns_agent
    FUZZER_SOURCES ${PROJECT_SOURCE_DIR}/agent/cache.cpp ${PROJECT_SOURCE_DIR}/agent/sync.cpp
      ${PROJECT_SOURCE_DIR}/include/elasticdns/protocol.cpp
      ${PROJECT_SOURCE_DIR}/include/elasticdns/validate.cpp)
endforeach()
