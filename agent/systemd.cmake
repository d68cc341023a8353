# Socket activation (agent/systemd_sockets.{hpp,cpp}): the agent adopts the DNS sockets that
# elasticdns-agent.socket passes in, so a restart drops no query.
target_sources(elasticdns_agent PRIVATE ${CMAKE_CURRENT_LIST_DIR}/systemd_sockets.cpp)
target_link_libraries(elasticdns_agent PUBLIC PkgConfig::SYSTEMD)
