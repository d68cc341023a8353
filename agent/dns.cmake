# The agent's DNS side: config, wire codec, answer policy and tables, server, metrics endpoint,
# and the elasticdns-agent executable.
target_sources(elasticdns_agent PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/config.cpp
  ${CMAKE_CURRENT_LIST_DIR}/wire.cpp
  ${CMAKE_CURRENT_LIST_DIR}/policy.cpp
  ${CMAKE_CURRENT_LIST_DIR}/answers.cpp
  ${CMAKE_CURRENT_LIST_DIR}/rate_limiter.cpp
  ${CMAKE_CURRENT_LIST_DIR}/server.cpp
  ${CMAKE_CURRENT_LIST_DIR}/metrics_http.cpp)
target_link_libraries(elasticdns_agent PUBLIC
  PkgConfig::LDNS yaml-cpp spdlog::spdlog Boost::boost)

add_executable(elasticdns-agent ${CMAKE_CURRENT_LIST_DIR}/main.cpp)
target_link_libraries(elasticdns-agent PRIVATE elasticdns_agent Boost::program_options
  PkgConfig::SYSTEMD)
install(TARGETS elasticdns-agent RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
