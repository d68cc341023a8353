# Docker discovery (agent/docker_discovery.{hpp,cpp}): the agent registers the local Docker
# engine's labelled containers with central. Beast HTTP over Docker's unix socket.
find_package(Boost 1.74 REQUIRED)
target_sources(elasticdns_agent PRIVATE ${CMAKE_CURRENT_LIST_DIR}/docker_discovery.cpp)
target_link_libraries(elasticdns_agent PUBLIC Boost::boost spdlog::spdlog)
