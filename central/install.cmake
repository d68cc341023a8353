# Installs elasticdns-central (disabled by default: one or a few hosts run it), elasticdnsctl,
# the central unit and its commented example configuration /etc/elasticdns/central.yml.
include(GNUInstallDirs)
include(${CMAKE_CURRENT_LIST_DIR}/packaging.cmake)

elasticdns_install_unit(${CMAKE_CURRENT_LIST_DIR}/elasticdns-central.service.in)
# The two programs are installed by central/central.cmake.
elasticdns_install_config(${CMAKE_CURRENT_LIST_DIR}/central.example.yml central.yml)
