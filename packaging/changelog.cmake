# CPACK_PRE_BUILD_SCRIPTS: Debian wants a changelog in every package (a native package's is
# /usr/share/doc/<package>/changelog.gz). The project keeps its history in git, so this
# writes one entry for the version being packaged (which `cpack -D CPACK_PACKAGE_VERSION=`
# can change). The date honours SOURCE_DATE_EPOCH, so the package can be reproducible.
set(doc "${CPACK_TEMPORARY_INSTALL_DIRECTORY}/usr/share/doc/${CPACK_PACKAGE_NAME}")
if(NOT IS_DIRECTORY "${doc}")
  message(FATAL_ERROR "changelog.cmake: ${doc} is not in the staged package")
endif()
string(TIMESTAMP date "%a, %d %b %Y %H:%M:%S +0000" UTC)
file(WRITE "${doc}/changelog"
"${CPACK_PACKAGE_NAME} (${CPACK_PACKAGE_VERSION}) unstable; urgency=medium

  * Version ${CPACK_PACKAGE_VERSION}, built from the agentwall source tree. What changed is in
    the project's git history.

 -- ${CPACK_PACKAGE_CONTACT}  ${date}
")
execute_process(COMMAND gzip -9nf "${doc}/changelog" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "changelog.cmake: gzip failed")
endif()
