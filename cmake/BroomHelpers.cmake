# Uniform target definitions (in the manner of Abseil's AbseilHelpers.cmake).

# broom_cc_test(NAME name SRCS ... [DEPS ...] [LABELS ...] [TIMEOUT seconds])
function(broom_cc_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SRCS})
  target_link_libraries(${T_NAME} PRIVATE broom::broom GTest::gtest GTest::gtest_main ${T_DEPS})
  target_compile_options(${T_NAME} PRIVATE ${BROOM_WARNINGS})
  target_include_directories(${T_NAME} PRIVATE ${PROJECT_SOURCE_DIR})
  set(timeout)
  if(T_TIMEOUT)
    set(timeout TIMEOUT ${T_TIMEOUT})
  endif()
  gtest_discover_tests(${T_NAME} PROPERTIES LABELS "${T_LABELS}" ${timeout} DISCOVERY_TIMEOUT 60)
endfunction()

# broom_install_component(NAME comp TARGETS t... [HEADERS h...] PC_NAME name PC_DESCRIPTION text
#                         [PC_REQUIRES mods] [PC_LIBS flags])
# Installs one component of the `broom` package: its libraries (exported as broom::<EXPORT_NAME>
# in lib/cmake/broom/broom-<comp>-targets.cmake), its public headers (paths relative to
# include/, installed under the same relative path), and a pkg-config module PC_NAME. Records
# the component in the global property BROOM_COMPONENTS, which broomConfig.cmake lists.
function(broom_install_component)
  cmake_parse_arguments(C "" "NAME;PC_NAME;PC_DESCRIPTION;PC_REQUIRES;PC_LIBS" "TARGETS;HEADERS"
                        ${ARGN})
  install(TARGETS ${C_TARGETS} EXPORT broom-${C_NAME}-targets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(EXPORT broom-${C_NAME}-targets NAMESPACE broom::
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/broom)
  foreach(h IN LISTS C_HEADERS)
    get_filename_component(dir ${h} DIRECTORY)
    install(FILES ${PROJECT_SOURCE_DIR}/include/${h}
            DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/${dir})
  endforeach()
  broom_install_pc(${C_PC_NAME} "${C_PC_DESCRIPTION}" "${C_PC_REQUIRES}" "${C_PC_LIBS}" "")
  set_property(GLOBAL APPEND PROPERTY BROOM_COMPONENTS ${C_NAME})
endfunction()

# broom_install_pc(name description requires libs cflags [variables]): writes and installs
# lib/pkgconfig/<name>.pc (cmake/broom-module.pc.in); `variables` are extra "key=value" lines.
# The prefix is found relative to the .pc file, so the installed tree can be moved.
function(broom_install_pc name description requires libs cflags)
  file(RELATIVE_PATH PC_PREFIX_FROM_PCFILEDIR "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
  string(REGEX REPLACE "/$" "" PC_PREFIX_FROM_PCFILEDIR "${PC_PREFIX_FROM_PCFILEDIR}")
  set(PC_NAME ${name})
  set(PC_DESCRIPTION "${description}")
  set(PC_REQUIRES "${requires}")
  set(PC_LIBS "${libs}")
  set(PC_CFLAGS "${cflags}")
  set(PC_VARIABLES "${ARGN}")
  configure_file(${PROJECT_SOURCE_DIR}/cmake/broom-module.pc.in
                 ${PROJECT_BINARY_DIR}/pkgconfig/${name}.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/pkgconfig/${name}.pc
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endfunction()
