# agentwall_pure: the stages that need no kernel and no root (decoders, LLM and MCP layers,
# detection, policy, budgets, sinks, configuration, the coverage view, the daemon's control
# socket). The unit tests and fuzzers link it. Included by the top-level CMakeLists.txt and by
# tests/fuzz/CMakeLists.txt (the clang sanitizer build), both with AGENTWALL_ROOT set to the
# repository; generated sources go under CMAKE_BINARY_DIR.

find_package(PkgConfig REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(spdlog REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(NGHTTP2 REQUIRED IMPORTED_TARGET libnghttp2)
pkg_check_modules(CODECS REQUIRED IMPORTED_TARGET zlib libbrotlidec libzstd)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
pkg_check_modules(YAMLCPP REQUIRED IMPORTED_TARGET yaml-cpp)
pkg_check_modules(SIMDJSON REQUIRED IMPORTED_TARGET simdjson)
# Budget ledger: SQLite on one host, Redis (hiredis) for a fleet sharing budgets.
pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)
# Detection: vectorscan (libhs) runs the injection rule set as one compiled multi-pattern
# database; utf8proc gives NFKC and case folding for the normalised view detectors read.
pkg_check_modules(HYPERSCAN REQUIRED IMPORTED_TARGET libhs>=5.4)
pkg_check_modules(UTF8PROC REQUIRED IMPORTED_TARGET libutf8proc)
# Go executables (agent/elf/gopclntab.cc): capstone decodes x86-64 instruction lengths, to find
# the RET instructions that stand in for return probes (uretprobes break Go programs).
pkg_check_modules(CAPSTONE REQUIRED IMPORTED_TARGET capstone)

file(GLOB AGENTWALL_PURE_SOURCES CONFIGURE_DEPENDS
  ${AGENTWALL_ROOT}/agent/common/*.cc
  ${AGENTWALL_ROOT}/agent/config/*.cc
  ${AGENTWALL_ROOT}/agent/coverage/*.cc
  ${AGENTWALL_ROOT}/agent/elf/*.cc
  ${AGENTWALL_ROOT}/agent/proc/*.cc
  ${AGENTWALL_ROOT}/agent/stream/*.cc
  ${AGENTWALL_ROOT}/agent/record/*.cc
  ${AGENTWALL_ROOT}/agent/output/*.cc
  ${AGENTWALL_ROOT}/agent/protocol/*.cc
  ${AGENTWALL_ROOT}/agent/protocol/*/*.cc
  ${AGENTWALL_ROOT}/agent/llm/*.cc
  ${AGENTWALL_ROOT}/agent/llm/*/*.cc
  ${AGENTWALL_ROOT}/agent/mcp/*.cc
  ${AGENTWALL_ROOT}/agent/detect/*.cc
  ${AGENTWALL_ROOT}/agent/policy/*.cc
  ${AGENTWALL_ROOT}/agent/budget/*.cc
  ${AGENTWALL_ROOT}/agent/enforce/gate.cc
  ${AGENTWALL_ROOT}/agent/decide/*.cc
  ${AGENTWALL_ROOT}/agent/sinks/*.cc)
# The daemon's parts that need no kernel (the control socket, what `agentwall top` and
# `tail` compute), so that unit tests reach them.
set(AGENTWALL_DAEMON_PURE_SOURCES
  ${AGENTWALL_ROOT}/agent/daemon/control.cc
  ${AGENTWALL_ROOT}/agent/daemon/event_filter.cc
  ${AGENTWALL_ROOT}/agent/daemon/top.cc)
list(APPEND AGENTWALL_PURE_SOURCES ${AGENTWALL_DAEMON_PURE_SOURCES})
# The default price table is compiled in, so the binary needs no data file to price calls.
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${AGENTWALL_ROOT}/policies/prices.yaml)
file(READ ${AGENTWALL_ROOT}/policies/prices.yaml AGENTWALL_PRICES_YAML)
configure_file(${AGENTWALL_ROOT}/cmake/builtin_prices.cc.in
  ${CMAKE_BINARY_DIR}/generated/builtin_prices.cc @ONLY)
# So is the default policy (alerts only), for `agentwall run` without --policy.
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${AGENTWALL_ROOT}/policies/default.yaml)
file(READ ${AGENTWALL_ROOT}/policies/default.yaml AGENTWALL_POLICY_YAML)
configure_file(${AGENTWALL_ROOT}/cmake/builtin_policy.cc.in
  ${CMAKE_BINARY_DIR}/generated/builtin_policy.cc @ONLY)
add_library(agentwall_pure STATIC ${AGENTWALL_PURE_SOURCES}
  ${CMAKE_BINARY_DIR}/generated/builtin_prices.cc
  ${CMAKE_BINARY_DIR}/generated/builtin_policy.cc)
target_include_directories(agentwall_pure PUBLIC ${AGENTWALL_ROOT} ${AGENTWALL_ROOT}/bpf)
target_link_libraries(agentwall_pure PUBLIC nlohmann_json::nlohmann_json spdlog::spdlog
  OpenSSL::SSL OpenSSL::Crypto Threads::Threads PkgConfig::NGHTTP2 PkgConfig::CODECS PkgConfig::PCRE2
  PkgConfig::YAMLCPP PkgConfig::SIMDJSON PkgConfig::HYPERSCAN PkgConfig::UTF8PROC
  PkgConfig::SQLITE3 PkgConfig::HIREDIS PkgConfig::CAPSTONE)
# The injection model's weights, embedded with .incbin (the dependency file does not list it).
set(AGENTWALL_INJECTION_MODEL ${AGENTWALL_ROOT}/agent/detect/data/injection_model.txt)
set_source_files_properties(${AGENTWALL_ROOT}/agent/detect/ngram_model.cc PROPERTIES
  COMPILE_DEFINITIONS AGENTWALL_INJECTION_MODEL_PATH="${AGENTWALL_INJECTION_MODEL}"
  OBJECT_DEPENDS ${AGENTWALL_INJECTION_MODEL})
# The words that text run together is read as (scripts/build_segment_words.py), embedded too.
set(AGENTWALL_SEGMENT_WORDS ${AGENTWALL_ROOT}/agent/detect/data/segment_words.txt)
set_source_files_properties(${AGENTWALL_ROOT}/agent/detect/disguise.cc PROPERTIES
  COMPILE_DEFINITIONS AGENTWALL_SEGMENT_WORDS_PATH="${AGENTWALL_SEGMENT_WORDS}"
  OBJECT_DEPENDS ${AGENTWALL_SEGMENT_WORDS})
# The injection rule set, compiled by vectorscan when agentwall is built (for any x86-64) and
# embedded, so that no process spends seconds compiling it at start-up
# (agent/detect/injection_rules.h). The generator needs only the rule table and libhs.
add_executable(agentwall_precompile ${AGENTWALL_ROOT}/agent/detect/precompile/main.cc
  ${AGENTWALL_ROOT}/agent/detect/injection_rules.cc)
target_include_directories(agentwall_precompile PRIVATE ${AGENTWALL_ROOT})
target_link_libraries(agentwall_precompile PRIVATE PkgConfig::HYPERSCAN)
set(AGENTWALL_INJECTION_DB ${CMAKE_BINARY_DIR}/generated/injection_rules.hsdb)
add_custom_command(OUTPUT ${AGENTWALL_INJECTION_DB}
  COMMAND agentwall_precompile ${AGENTWALL_INJECTION_DB}
  DEPENDS agentwall_precompile
  COMMENT "Compiling the injection rule set with vectorscan"
  VERBATIM)
target_sources(agentwall_pure PRIVATE ${AGENTWALL_INJECTION_DB})
set_source_files_properties(${AGENTWALL_ROOT}/agent/detect/injection_db.cc PROPERTIES
  COMPILE_DEFINITIONS AGENTWALL_INJECTION_DB_PATH="${AGENTWALL_INJECTION_DB}"
  OBJECT_DEPENDS ${AGENTWALL_INJECTION_DB})
include(${AGENTWALL_ROOT}/cmake/tokenizer.cmake)

