# The unit test executable and one CTest entry per test file (label `unit`), so the summary
# shows what ran. Included by tests/CMakeLists.txt (the main build) and by
# tests/fuzz/CMakeLists.txt (the clang ASan/UBSan build), with AGENTWALL_ROOT set.
find_package(doctest REQUIRED)
file(GLOB UNIT_TEST_SOURCES CONFIGURE_DEPENDS ${AGENTWALL_ROOT}/tests/unit/*_test.cc)
add_executable(unit_tests ${AGENTWALL_ROOT}/tests/unit/main.cc ${UNIT_TEST_SOURCES})
target_link_libraries(unit_tests PRIVATE agentwall_pure doctest::doctest)
target_compile_definitions(unit_tests PRIVATE AGENTWALL_FIXTURES="${AGENTWALL_ROOT}/tests/fixtures")
# AGENTWALL_UNIT_STACK_KB, when set, is the stack the tests run with (the sanitizer build's
# unoptimised frames are several times those of the agent's -O2 build).
foreach(src ${UNIT_TEST_SOURCES})
  get_filename_component(name ${src} NAME_WE)
  if(AGENTWALL_UNIT_STACK_KB)
    add_test(NAME unit.${name} COMMAND sh -c "ulimit -s ${AGENTWALL_UNIT_STACK_KB} && exec \"$0\" \"$@\""
      $<TARGET_FILE:unit_tests> --source-file=*${name}.cc)
  else()
    add_test(NAME unit.${name} COMMAND unit_tests --source-file=*${name}.cc)
  endif()
  set_tests_properties(unit.${name} PROPERTIES LABELS unit)
endforeach()
