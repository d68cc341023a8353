# Installs elasticdns-central (disabled by default: one or a few hosts run it), elasticdnsctl,
# the central unit and its commented example configuration /etc/elasticdns/central.yml.
include(GNUInstallDirs)
include(${CMAKE_CURRENT_LIST_DIR}/packaging.cmake)

elasticdns_install_unit(${CMAKE_CURRENT_LIST_DIR}/elasticdns-central.service.in)
elasticdns_install_program(elasticdns-central ${CMAKE_INSTALL_BINDIR})
elasticdns_install_program(elasticdnsctl ${CMAKE_INSTALL_BINDIR})
elasticdns_install_config(${CMAKE_CURRENT_LIST_DIR}/central.example.yml central.yml)
