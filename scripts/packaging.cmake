# How ElasticDNS is installed and packaged (agent/README.md, "Operations"): install helpers used by
# agent/ and central/, and the CPack configuration of the one Debian package, `elasticdns`, that
# holds both daemons, elasticdnsctl, the units and the configs. The top-level CMakeLists.txt
# includes this file before the parts and calls elasticdns_configure_cpack() after them.
#   cmake --install build [--prefix /usr]            # configs in /etc/elasticdns, kept if present
#   cmake --build build --target package             # build/elasticdns_<version>-1_<arch>.deb
#   cpack --config build/CPackConfig.cmake -R 0.1.1  # the same package, another version
include_guard(GLOBAL)
include(GNUInstallDirs)

# Fixed, not under the prefix: the units, the maintainer scripts and the README name it.
set(ELASTICDNS_CONFIG_DIR /etc/elasticdns CACHE INTERNAL "configuration directory")

# Writes a systemd unit from its template at install time, with @ELASTICDNS_SBINDIR@,
# @ELASTICDNS_BINDIR@ and @ELASTICDNS_DOCDIR@ set from the prefix being installed to. Units go
# to <prefix>/lib/systemd/system, which systemd reads for /usr and /usr/local.
function(elasticdns_install_unit template)
  get_filename_component(unit ${template} NAME_WLE)
  install(CODE "
    set(ELASTICDNS_SBINDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_SBINDIR}\")
    set(ELASTICDNS_BINDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
    set(ELASTICDNS_DOCDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_DATAROOTDIR}/doc/elasticdns\")
    set(unit_path \"\${CMAKE_INSTALL_PREFIX}/lib/systemd/system/${unit}\")
    message(STATUS \"Installing: \$ENV{DESTDIR}\${unit_path}\")
    configure_file(\"${template}\" \"\$ENV{DESTDIR}\${unit_path}\" @ONLY)
    list(APPEND CMAKE_INSTALL_MANIFEST_FILES \"\${unit_path}\")
  ")
endfunction()

# Installs a commented example configuration as /etc/elasticdns/<name>, unless that file
# already exists: a re-install never overwrites an edited configuration (the .deb marks it a
# conffile, so dpkg keeps it on upgrade too).
function(elasticdns_install_config source name)
  install(CODE "
    set(config \"\$ENV{DESTDIR}${ELASTICDNS_CONFIG_DIR}/${name}\")
    if(EXISTS \"\${config}\")
      message(STATUS \"Keeping (edited configuration): \${config}\")
    else()
      # file(INSTALL prefixes DESTDIR itself.
      file(INSTALL \"${source}\" DESTINATION \"${ELASTICDNS_CONFIG_DIR}\"
           RENAME \"${name}\" FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
    endif()
    list(APPEND CMAKE_INSTALL_MANIFEST_FILES \"${ELASTICDNS_CONFIG_DIR}/${name}\")
  ")
  set_property(GLOBAL APPEND PROPERTY ELASTICDNS_CONFFILES ${ELASTICDNS_CONFIG_DIR}/${name})
endfunction()

install(FILES ${CMAKE_SOURCE_DIR}/README.md
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/elasticdns)
foreach(part agent central)
  install(FILES ${CMAKE_SOURCE_DIR}/${part}/README.md
          DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/elasticdns/${part})
endforeach()
# The state directory; the units also create it (StateDirectory=), the .deb's postinst too.
install(CODE "file(MAKE_DIRECTORY \"\$ENV{DESTDIR}/var/lib/elasticdns\")")

# CPack reads its variables when included: call this after every folder has added its install
# rules and conffiles.
function(elasticdns_configure_cpack)
  set(CPACK_GENERATOR DEB)
  set(CPACK_PACKAGE_NAME elasticdns)
  set(CPACK_PACKAGE_VENDOR "ElasticDNS")
  set(CPACK_PACKAGE_CONTACT "ElasticDNS maintainers <elasticdns@localhost>")
  set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "DNS-based service discovery for containers")
  set(CPACK_PACKAGE_DESCRIPTION
      "A per-host agent answers *.cloud66.local with the addresses of the containers running a
service, choosing by the caller's release version and host (eBPF identifies the caller), and
forwards every other name. It mirrors its topology from elasticdns-central, an HTTP service
with an SQLite store; elasticdnsctl edits it. The agent discovers Docker containers by label.")
  set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
  # Install into a staging DESTDIR with the real prefix (/usr, whatever the build's
  # CMAKE_INSTALL_PREFIX): /etc and /var stay absolute.
  set(CPACK_SET_DESTDIR ON)
  set(CPACK_INSTALL_PREFIX /usr)
  set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
  set(CPACK_STRIP_FILES ON)
  set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
  set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
  set(CPACK_DEBIAN_PACKAGE_SECTION net)
  set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  # Maintainer scripts call deb-systemd-helper and deb-systemd-invoke.
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "init-system-helpers (>= 1.54)")
  set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "systemd")
  set(CPACK_DEBIAN_PACKAGE_SUGGESTS "docker.io, dnsutils")

  get_property(conffiles GLOBAL PROPERTY ELASTICDNS_CONFFILES)
  list(JOIN conffiles "\n" conffiles)
  set(control_dir ${CMAKE_BINARY_DIR}/debian-control)
  file(WRITE ${control_dir}/conffiles "${conffiles}\n")
  foreach(script postinst prerm postrm)
    file(COPY ${CMAKE_SOURCE_DIR}/scripts/debian/${script} DESTINATION ${control_dir}
         FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                          WORLD_READ WORLD_EXECUTE)
  endforeach()
  set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
      ${control_dir}/conffiles ${control_dir}/postinst ${control_dir}/prerm
      ${control_dir}/postrm)
  set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
  include(CPack)
endfunction()
