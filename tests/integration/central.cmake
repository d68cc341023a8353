# elasticdns-central and elasticdnsctl against real sockets and a real SQLite database.
find_program(ELASTICDNS_PYTHON3 python3 REQUIRED)
foreach(suite ApiTest WatchTest LimitsTest MalformedTest DurabilityTest CtlTest ConfigFileTest)
  add_test(NAME integration.central.${suite}
    COMMAND ${ELASTICDNS_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/central_test.py
      --central $<TARGET_FILE:elasticdns-central> --ctl $<TARGET_FILE:elasticdnsctl> ${suite})
  set_tests_properties(integration.central.${suite} PROPERTIES TIMEOUT 120)
endforeach()
