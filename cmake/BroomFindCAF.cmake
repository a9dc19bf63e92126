# Finds the C++ Actor Framework 0.17 as Debian packages it (libcaf-dev: headers and
# libcaf_core/libcaf_io, no CMake config, no .pc) and defines the imported targets CAF::core and
# CAF::io (the names CAF's own CMake package uses in later releases), unless they exist already.
# Used by Broom's build and, installed next to broomConfig.cmake, by the `caf` component.
if(TARGET CAF::core AND TARGET CAF::io)
  return()
endif()
find_path(CAF_INCLUDE_DIR caf/all.hpp)
find_library(CAF_CORE_LIBRARY caf_core)
find_library(CAF_IO_LIBRARY caf_io)
if(NOT CAF_INCLUDE_DIR OR NOT CAF_CORE_LIBRARY OR NOT CAF_IO_LIBRARY)
  return()
endif()
find_package(Threads REQUIRED)
add_library(CAF::core UNKNOWN IMPORTED)
set_target_properties(CAF::core PROPERTIES
  IMPORTED_LOCATION ${CAF_CORE_LIBRARY}
  INTERFACE_INCLUDE_DIRECTORIES ${CAF_INCLUDE_DIR}
  INTERFACE_LINK_LIBRARIES Threads::Threads)
add_library(CAF::io UNKNOWN IMPORTED)
set_target_properties(CAF::io PROPERTIES
  IMPORTED_LOCATION ${CAF_IO_LIBRARY}
  INTERFACE_LINK_LIBRARIES CAF::core)
