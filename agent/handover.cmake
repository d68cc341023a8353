# Hot handover (agent/handover.{hpp,cpp}): a starting agent takes the running one's DNS sockets
# over a unix socket in state_dir (SCM_RIGHTS), so a restart outside systemd drops no query.
target_sources(elasticdns_agent PRIVATE ${CMAKE_CURRENT_LIST_DIR}/handover.cpp)
