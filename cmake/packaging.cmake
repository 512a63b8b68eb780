# The Debian package (CPack, DEB generator) from the install rules in the top-level CMakeLists.txt:
#   scripts/package.sh [amd64|arm64]   ->   dist/hubgate_<version>_<arch>.deb
# `cpack -G DEB` in any build tree writes hubgate_<version>_<arch>.deb there (CI packages build/).
# Configure with -DCMAKE_INSTALL_PREFIX=/usr (the script does). tests/package/check_deb.sh checks
# what comes out: contents, conffiles, Depends.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME hubgate)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "hubgate maintainers <hubgate@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "IoT edge gateway: MQTT/CoAP devices to an IoT hub, store-and-forward")
set(CPACK_PACKAGE_DESCRIPTION
    "hubgate authenticates local MQTT and CoAP devices, stores every message in SQLite before\n acknowledging it, and relays the stored messages to Azure IoT Hub or an MQTT broker.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # hubgate_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://example.invalid/hubgate")
if(CMAKE_CROSSCOMPILING AND CMAKE_SYSTEM_PROCESSOR STREQUAL "aarch64")
  set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE arm64)
endif()
# Library dependencies from dpkg-shlibdeps (arm64: the :arm64 packages' shlibs); the maintainer
# scripts need systemd's sysusers and tmpfiles. libavahi-client3 is named by hand: discovery
# dlopen's it (gateway/discovery/avahi_api.hpp), which dpkg-shlibdeps cannot see.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd, libavahi-client3")
# DNS-SD discovery (docs/discovery.md) advertises through avahi-daemon; without it the gateway runs on.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "avahi-daemon")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${PROJECT_SOURCE_DIR}/packaging/deb/conffiles;${PROJECT_SOURCE_DIR}/packaging/deb/postinst;${PROJECT_SOURCE_DIR}/packaging/deb/prerm;${PROJECT_SOURCE_DIR}/packaging/deb/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
