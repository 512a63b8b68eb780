# Code size. Most of hubgate's idle RSS is the text of the binary and of its libraries, and a page
# of text costs its RSS once anything near it has run (docs/BENCHMARKS.md, "Memory"): code that a
# gateway never runs, or runs once at start, still counts.
# - Every function and object in its own section; the link drops the ones nothing refers to.
# - hubgate_cold(TARGET): a stage off the message path (config, twins, pairing, discovery, the
#   metrics HTTP server, the CLI) is compiled for size, -Os, in the builds users run. The message
#   path (adapters, translate, store, relay, upstream, model, the metrics counters) stays at -O2.
if(NOT HUBGATE_FUZZ)
  add_compile_options(-ffunction-sections -fdata-sections)
  add_link_options(-Wl,--gc-sections)
endif()
function(hubgate_cold target)
  if(CMAKE_BUILD_TYPE MATCHES "^(Release|RelWithDebInfo)$" AND NOT HUBGATE_SANITIZE)
    target_compile_options(${target} PRIVATE -Os)
  endif()
endfunction()
# The same for some source files of a target (in the calling directory).
function(hubgate_cold_sources)
  if(CMAKE_BUILD_TYPE MATCHES "^(Release|RelWithDebInfo)$" AND NOT HUBGATE_SANITIZE)
    set_source_files_properties(${ARGN} PROPERTIES COMPILE_OPTIONS -Os)
  endif()
endfunction()
