# Cross-building hubgate for arm64 (aarch64) on an amd64 Debian 12 host, with Debian's multiarch:
# crossbuild-essential-arm64 (aarch64-linux-gnu-g++) and the :arm64 -dev packages, whose libraries
# live in /usr/lib/aarch64-linux-gnu and share /usr/include with the host's. scripts/package.sh
# installs them and uses this file:
#   cmake -S . -B build-arm64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-arm64.cmake
# Binaries (the unit tests too) run through qemu-user: CMAKE_CROSSCOMPILING_EMULATOR is what ctest
# and doctest's test discovery prefix them with.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Multiarch: find_library/find_package look in lib/aarch64-linux-gnu under each prefix.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# Programs (pkg-config, the emulator) from the host; libraries, headers and CMake packages from the
# multiarch directories of /usr (the target's) and /usr/aarch64-linux-gnu (the cross libc).
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /usr)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
# pkg-config must read the arm64 .pc files, never the host's.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

# No -L /usr/aarch64-linux-gnu: that prefix holds the cross toolchain's ld.so (libc6-arm64-cross,
# 2.36-8cross1) while the program then loads libc.so.6 from the multiarch libc6:arm64 (2.36-9+deb12uN,
# /lib/aarch64-linux-gnu), and with the two mixed the first pthread_create spins forever. Without
# -L, qemu takes /lib/ld-linux-aarch64.so.1 from libc6:arm64 too: one consistent glibc.
find_program(HUBGATE_QEMU_AARCH64 qemu-aarch64-static)
if(HUBGATE_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${HUBGATE_QEMU_AARCH64}")
endif()

# dpkg-shlibdeps (CPack) must resolve the arm64 libraries, not the host's.
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE arm64)
