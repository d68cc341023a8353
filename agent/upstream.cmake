# Forwarder + answer cache (agent/upstream.*, agent/cache.*) and sync with central (agent/sync.*,
# agent/http_client.*).
target_sources(elasticdns_agent PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/cache.cpp
  ${CMAKE_CURRENT_LIST_DIR}/http_client.cpp
  ${CMAKE_CURRENT_LIST_DIR}/sync.cpp
  ${CMAKE_CURRENT_LIST_DIR}/upstream.cpp)
target_link_libraries(elasticdns_agent PUBLIC spdlog::spdlog)
