# Packaging and operations tests (issue 6, README.md "Operations"). They need the three
# programs, so they are declared only when this build has them.
#   pkg.units_verify       systemd-analyze verify on the units installed by cmake --install
set(pkg_dir ${CMAKE_CURRENT_LIST_DIR})
if(TARGET elasticdns-agent AND TARGET elasticdns-central AND TARGET elasticdnsctl)
  add_test(NAME pkg.units_verify
           COMMAND bash ${pkg_dir}/pkg_units_verify.sh ${CMAKE_BINARY_DIR})
  set_tests_properties(pkg.units_verify PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120)
else()
  message(STATUS "pkg tests: elasticdns-agent, elasticdns-central or elasticdnsctl not built, "
                 "packaging tests not declared")
endif()
