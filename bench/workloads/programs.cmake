# The whole-program benchmarks, each built once per memory policy (program_common.h, heaps.h):
#   <prog>_broom          Broom regions (links libbroom, so jemalloc is its general heap)
#   <prog>_malloc         links no allocator: glibc malloc, or the malloc given by LD_PRELOAD
#   <prog>_gc             Boehm GC (libgc-dev, pkg-config bdw-gc)
#   <prog>_pmr_pool       std::pmr::unsynchronized_pool_resource; links no allocator
#   <prog>_mimalloc_heap  a mimalloc heap (links libmimalloc, never libbroom)
# lists_of_lists: broom, malloc, gc. churn: all five. The actor-region (reap) programs
# reap_batch, reap_pmr and reap_footprint: all but gc. bench/tools/specs/*.json run them side by
# side. ctest runs each in a short smoke mode (label bench).
pkg_check_modules(BROOM_BENCH_GC IMPORTED_TARGET bdw-gc)
if(NOT BROOM_BENCH_GC_FOUND)
  message(STATUS "bench: Boehm GC not found (libgc-dev); the *_gc programs are left out")
endif()
find_package(mimalloc CONFIG QUIET)
if(NOT mimalloc_FOUND)
  message(STATUS "bench: mimalloc not found (libmimalloc-dev); the *_mimalloc_heap programs are left out")
endif()

# broom_bench_program(<prog> "<smoke args>" <policy>...): <prog>.cc once per policy that can be
# built here (gc and mimalloc_heap need their library and no sanitizer).
function(broom_bench_program prog smoke_args)
  set(policy_id_broom 1)
  set(policy_id_malloc 2)
  set(policy_id_gc 3)
  set(policy_id_pmr_pool 4)
  set(policy_id_mimalloc_heap 5)
  foreach(policy IN LISTS ARGN)
    if(policy STREQUAL "gc" AND (NOT BROOM_BENCH_GC_FOUND OR BROOM_SANITIZER))
      continue()
    endif()
    if(policy STREQUAL "mimalloc_heap" AND (NOT mimalloc_FOUND OR BROOM_SANITIZER))
      continue()
    endif()
    set(target ${prog}_${policy})
    add_executable(${target} ${prog}.cc)
    target_compile_options(${target} PRIVATE ${BROOM_WARNINGS})
    target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR})
    target_compile_definitions(${target} PRIVATE BROOM_BENCH_POLICY=${policy_id_${policy}})
    if(policy STREQUAL "broom")
      target_link_libraries(${target} PRIVATE broom::broom)
    elseif(policy STREQUAL "gc")
      target_link_libraries(${target} PRIVATE PkgConfig::BROOM_BENCH_GC)
    elseif(policy STREQUAL "mimalloc_heap")
      target_link_libraries(${target} PRIVATE mimalloc)
    else()
      target_link_libraries(${target} PRIVATE ${CMAKE_DL_LIBS})
    endif()
    add_test(NAME ${target}_smoke COMMAND ${target} ${smoke_args})
    set_tests_properties(${target}_smoke PROPERTIES LABELS bench TIMEOUT 30
                         PASS_REGULAR_EXPRESSION "RESULT .*seconds=")
  endforeach()
endfunction()

broom_bench_program(lists_of_lists "--n=200;--rounds=3" broom malloc gc)
broom_bench_program(churn "--ops=200000;--live=20000" broom malloc gc pmr_pool mimalloc_heap)
set(reap_policies broom malloc pmr_pool mimalloc_heap)
broom_bench_program(reap_batch "--pattern=batch;--n=20000;--sizes=mixed;--ops=200000"
                    ${reap_policies})
broom_bench_program(reap_pmr "--epochs=6;--keys=2000;--events=10000" ${reap_policies})
broom_bench_program(reap_footprint "--phase_bytes=4194304" ${reap_policies})
