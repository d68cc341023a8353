# End to end: real central + agent + unbound on loopback, queried with dig and drill.
add_test(NAME integration.agent.e2e
  COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/agent_test.py ${CMAKE_BINARY_DIR})
set_tests_properties(integration.agent.e2e PROPERTIES
  SKIP_RETURN_CODE ${ELASTICDNS_TEST_SKIP_CODE} TIMEOUT 180)

# forward_limit: the real agent and a tiny upstream on loopback (no root).
add_test(NAME integration.agent.forward_limit
  COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/agent_forward_limit_test.py ${CMAKE_BINARY_DIR})
set_tests_properties(integration.agent.forward_limit PROPERTIES TIMEOUT 60)
