# End-to-end tests on a data centre built on this machine (tests/integration/dc/): hosts as
# network namespaces, containers as netns + cgroup v2, a real central, a real agent per host with
# its eBPF, a real unbound as the internet. Root only: SKIPPED (exit 77) otherwise.
set(ELASTICDNS_DC_DIR ${CMAKE_CURRENT_LIST_DIR}/dc)
set(ELASTICDNS_PYTHON /usr/bin/python3)

add_test(NAME integration.dc.harness
         COMMAND ${ELASTICDNS_PYTHON} ${ELASTICDNS_DC_DIR}/harness_selftest.py)
set_tests_properties(integration.dc.harness PROPERTIES
  SKIP_RETURN_CODE ${ELASTICDNS_TEST_SKIP_CODE} TIMEOUT 120 LABELS "integration;dc;root")

# The scenarios need both daemons; without them each test reports SKIPPED with the reason.
set(ELASTICDNS_DC_BINARIES)
if(TARGET elasticdns-central)
  list(APPEND ELASTICDNS_DC_BINARIES --central $<TARGET_FILE:elasticdns-central>)
endif()
if(TARGET elasticdns-agent)
  list(APPEND ELASTICDNS_DC_BINARIES --agent $<TARGET_FILE:elasticdns-agent>)
endif()

# One data centre per group of scenarios; each scenario is a separately reported check.
foreach(group deploy policies datasources_upstream central_down host_network)
  add_test(NAME integration.dc.${group}
           COMMAND ${ELASTICDNS_PYTHON} ${ELASTICDNS_DC_DIR}/scenarios.py
                   --group ${group} ${ELASTICDNS_DC_BINARIES})
  set_tests_properties(integration.dc.${group} PROPERTIES
    SKIP_RETURN_CODE ${ELASTICDNS_TEST_SKIP_CODE} TIMEOUT 180 LABELS "integration;dc;root")
endforeach()

# The README's demo (scripts/demo.sh) on a copy of the source tree with no build directory.
if(TARGET elasticdns-central AND TARGET elasticdns-agent)
  add_test(NAME integration.demo.fresh_clone
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/demo_fresh_clone.sh ${PROJECT_SOURCE_DIR}
                   $<TARGET_FILE:elasticdns-central> $<TARGET_FILE:elasticdns-agent>)
  set_tests_properties(integration.demo.fresh_clone PROPERTIES
    SKIP_RETURN_CODE ${ELASTICDNS_TEST_SKIP_CODE} TIMEOUT 360 LABELS "integration;dc;root")
endif()
