# Propagation benchmark (tests/bench/propagation.py): not run by ctest. Run it as root with
#   cmake --build build --target bench_propagation
if(TARGET elasticdns-central AND TARGET elasticdns-agent)
  add_custom_target(bench_propagation
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/propagation.py
            --central $<TARGET_FILE:elasticdns-central> --agent $<TARGET_FILE:elasticdns-agent>
    DEPENDS elasticdns-central elasticdns-agent
    USES_TERMINAL)
endif()
