# Project-wide warning and sanitizer flags, applied through the hubgate_flags interface target.
add_library(hubgate_flags INTERFACE)
target_compile_options(hubgate_flags INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor)
if(HUBGATE_WERROR)
  target_compile_options(hubgate_flags INTERFACE -Werror)
endif()
if(HUBGATE_SANITIZE)
  target_compile_options(hubgate_flags INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer
                                                 -fno-sanitize-recover=undefined)
  target_link_options(hubgate_flags INTERFACE -fsanitize=address,undefined)
endif()
