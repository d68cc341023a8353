# eBPF tests (issue 4). Root + BPF needed; they exit 77 (SKIPPED) otherwise.
if(ELASTICDNS_BPF)
  set(bpf_test_dir ${CMAKE_CURRENT_LIST_DIR})

  add_executable(bpf_egress_test_run ${bpf_test_dir}/egress_test_run.cpp)
  target_link_libraries(bpf_egress_test_run PRIVATE elasticdns_agent elasticdns_bpf_skel GTest::gtest)
  add_test(NAME bpf.egress_test_run COMMAND bpf_egress_test_run)
  set_tests_properties(bpf.egress_test_run PROPERTIES SKIP_RETURN_CODE ${ELASTICDNS_TEST_SKIP_CODE}
                       TIMEOUT 60)

  # DNS responder that answers with the identified caller (stand-in for the agent's server).
  add_executable(edns_test_responder ${bpf_test_dir}/test_responder.cpp)
  target_link_libraries(edns_test_responder PRIVATE elasticdns_agent)

  # The same stub-resolver client twice: glibc (dynamic) and musl (static, musl-tools).
  add_executable(edns_resolve_glibc ${bpf_test_dir}/resolve_client.c)
  find_program(MUSL_GCC musl-gcc)
  if(MUSL_GCC)
    add_custom_command(
      OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/edns_resolve_musl
      COMMAND ${MUSL_GCC} -static -O2 -Wall -o ${CMAKE_CURRENT_BINARY_DIR}/edns_resolve_musl
              ${bpf_test_dir}/resolve_client.c
      DEPENDS ${bpf_test_dir}/resolve_client.c
      COMMENT "musl-gcc -static edns_resolve_musl")
    add_custom_target(edns_resolve_musl_build ALL DEPENDS ${CMAKE_CURRENT_BINARY_DIR}/edns_resolve_musl)
  endif()

  add_test(NAME bpf.redirect_identity
           COMMAND bash ${bpf_test_dir}/redirect_identity_test.sh
                   $<TARGET_FILE:edns_test_responder> ${CMAKE_CURRENT_BINARY_DIR}/edns_resolve_musl
                   $<TARGET_FILE:edns_resolve_glibc>)
  set_tests_properties(bpf.redirect_identity PROPERTIES SKIP_RETURN_CODE ${ELASTICDNS_TEST_SKIP_CODE}
                       TIMEOUT 120)
endif()

# Unit tests of the caller registry (no root, no BPF).
if(ELASTICDNS_BPF)
  add_executable(bpf_callers_test ${CMAKE_CURRENT_LIST_DIR}/callers_test.cpp)
  target_link_libraries(bpf_callers_test PRIVATE elasticdns_agent GTest::gtest_main)
  target_compile_definitions(bpf_callers_test PRIVATE
                             ELASTICDNS_README="${PROJECT_SOURCE_DIR}/README.md")
  gtest_discover_tests(bpf_callers_test TEST_PREFIX "unit.callers." DISCOVERY_TIMEOUT 30)
endif()

# The real agent with eBPF (needs the agent executable from agent/dns.cmake).
if(ELASTICDNS_BPF AND TARGET elasticdns-agent)
  add_test(NAME bpf.agent_identity
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/agent_identity_test.sh
                   $<TARGET_FILE:elasticdns-agent> ${CMAKE_CURRENT_BINARY_DIR}/edns_resolve_musl)
  set_tests_properties(bpf.agent_identity PROPERTIES SKIP_RETURN_CODE ${ELASTICDNS_TEST_SKIP_CODE}
                       TIMEOUT 120)
endif()

# Hot handover of the real agent (agent/handover.hpp): 3 restarts under a UDP + TCP query stream
# from a redirected container, no failed query; the failure cases.
if(ELASTICDNS_BPF AND TARGET elasticdns-agent)
  add_test(NAME bpf.agent_restart
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/agent_restart_test.sh
                   $<TARGET_FILE:elasticdns-agent>)
  set_tests_properties(bpf.agent_restart PROPERTIES SKIP_RETURN_CODE ${ELASTICDNS_TEST_SKIP_CODE}
                       TIMEOUT 120)
endif()
