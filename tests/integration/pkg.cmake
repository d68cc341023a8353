# Packaging and operations tests (issue 6, README.md "Operations"). They need the three
# programs, so they are declared only when this build has them.
#   pkg.units_verify       systemd-analyze verify on the units installed by cmake --install
#   pkg.build_debs         CPack builds the .deb (and a higher version of it); its contents
#   pkg.deb_lifecycle      in a booted Debian system container: install, upgrade (edited
#                          config kept), remove (eBPF detached), purge (nothing left)
#   pkg.restart_no_drop    in the container: dig in a loop across 5 `systemctl restart`s of
#                          the agent, no failed query (socket activation)
#   pkg.docker_discovery   the agent's Docker discovery against a real dockerd and central
# The container tests need root, systemd-nspawn and debootstrap (SKIPPED without); the first
# run debootstraps Debian 12 into /var/cache/elasticdns-test (~1-4 min), later runs reuse it.
set(pkg_dir ${CMAKE_CURRENT_LIST_DIR})
if(TARGET elasticdns-agent AND TARGET elasticdns-central AND TARGET elasticdnsctl)
  add_test(NAME pkg.units_verify
           COMMAND bash ${pkg_dir}/pkg_units_verify.sh ${CMAKE_BINARY_DIR})
  add_test(NAME pkg.build_debs
           COMMAND bash ${pkg_dir}/pkg_build_debs.sh ${CMAKE_BINARY_DIR} ${PROJECT_VERSION})
  add_test(NAME pkg.deb_lifecycle
           COMMAND bash ${pkg_dir}/pkg_nspawn.sh ${CMAKE_BINARY_DIR} lifecycle)
  add_test(NAME pkg.restart_no_drop
           COMMAND bash ${pkg_dir}/pkg_nspawn.sh ${CMAKE_BINARY_DIR} restart)
  set_tests_properties(pkg.units_verify PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120)
  set_tests_properties(pkg.build_debs PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300
                       FIXTURES_SETUP pkg_debs)
  set_tests_properties(pkg.deb_lifecycle pkg.restart_no_drop PROPERTIES
                       SKIP_RETURN_CODE 77 TIMEOUT 480 FIXTURES_REQUIRED pkg_debs)
else()
  message(STATUS "pkg tests: elasticdns-agent, elasticdns-central or elasticdnsctl not built, "
                 "packaging tests not declared")
endif()

# Docker discovery against a real dockerd (root, docker.io, busybox-static; SKIPPED without).
if(TARGET elasticdns-agent AND TARGET elasticdns-central AND TARGET elasticdnsctl)
  add_test(NAME pkg.docker_discovery
           COMMAND bash ${pkg_dir}/pkg_docker_discovery.sh ${CMAKE_BINARY_DIR})
  set_tests_properties(pkg.docker_discovery PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
endif()
