# elasticdns-central (HTTP API over an SQLite store) and elasticdnsctl (its command-line client).
add_library(elasticdns_central STATIC
  ${CMAKE_CURRENT_LIST_DIR}/apply.cpp
  ${CMAKE_CURRENT_LIST_DIR}/config.cpp
  ${CMAKE_CURRENT_LIST_DIR}/http.cpp
  ${CMAKE_CURRENT_LIST_DIR}/state.cpp
  ${CMAKE_CURRENT_LIST_DIR}/store.cpp
  ${CMAKE_CURRENT_LIST_DIR}/watch.cpp)
target_include_directories(elasticdns_central PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(elasticdns_central PUBLIC elasticdns_common PkgConfig::SQLITE3 yaml-cpp
  spdlog::spdlog Threads::Threads)
target_compile_definitions(elasticdns_central PUBLIC BOOST_BEAST_USE_STD_STRING_VIEW)

add_executable(elasticdns-central ${CMAKE_CURRENT_LIST_DIR}/main.cpp)
target_link_libraries(elasticdns-central PRIVATE elasticdns_central Boost::program_options)

add_executable(elasticdnsctl ${CMAKE_CURRENT_LIST_DIR}/ctl_main.cpp)
target_link_libraries(elasticdnsctl PRIVATE elasticdns_common Boost::program_options
  Threads::Threads)
target_compile_definitions(elasticdnsctl PRIVATE BOOST_BEAST_USE_STD_STRING_VIEW)

install(TARGETS elasticdns-central elasticdnsctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
