# Per-server agent tokens (central/agent_tokens.{hpp,cpp}), enforced by the router. Deferred:
# elasticdns_central is defined by central.cmake, which this folder includes after this file.
cmake_language(EVAL CODE "cmake_language(DEFER CALL target_sources elasticdns_central PRIVATE
                          \"${CMAKE_CURRENT_LIST_DIR}/agent_tokens.cpp\")")
