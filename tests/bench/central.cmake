# central_bench: acknowledged writes/s, fan-out to 1,000 watchers, RSS at 100,000 containers.
# Built, not run by ctest:  build/tests/central_bench build/central/elasticdns-central
add_executable(central_bench ${CMAKE_CURRENT_LIST_DIR}/central_bench.cpp)
target_link_libraries(central_bench PRIVATE Threads::Threads)
target_compile_definitions(central_bench PRIVATE BOOST_BEAST_USE_STD_STRING_VIEW)
