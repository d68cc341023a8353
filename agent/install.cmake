# Installs elasticdns-agent with its systemd units (elasticdns-agent.service, .socket) and its
# commented example configuration /etc/elasticdns/agent.yml (README.md, "Operations").
# The units are written at install time so that ExecStart names the prefix actually installed
# to (`cmake --install build --prefix ...`, or /usr in the .deb).
include(GNUInstallDirs)
include(${CMAKE_CURRENT_LIST_DIR}/../central/packaging.cmake)

elasticdns_install_unit(${CMAKE_CURRENT_LIST_DIR}/elasticdns-agent.service.in)
elasticdns_install_unit(${CMAKE_CURRENT_LIST_DIR}/elasticdns-agent.socket.in)
# The program itself is installed by agent/dns.cmake.
elasticdns_install_config(${CMAKE_CURRENT_LIST_DIR}/agent.example.yml agent.yml)
