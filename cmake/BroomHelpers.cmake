# Uniform target definitions (in the manner of Abseil's AbseilHelpers.cmake).

# broom_cc_test(NAME name SRCS ... [DEPS ...] [LABELS ...])
function(broom_cc_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SRCS})
  target_link_libraries(${T_NAME} PRIVATE broom::broom GTest::gtest GTest::gtest_main ${T_DEPS})
  target_compile_options(${T_NAME} PRIVATE ${BROOM_WARNINGS})
  target_include_directories(${T_NAME} PRIVATE ${PROJECT_SOURCE_DIR})
  gtest_discover_tests(${T_NAME} PROPERTIES LABELS "${T_LABELS}" DISCOVERY_TIMEOUT 60)
endfunction()
