# Installation: headers under include/xgrad/, static libraries, and a package config so
# another project can find_package(xgrad) and link xgrad::xgrad.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(XGRAD_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/xgrad)

set(xgrad_installed_targets xgrad xgrad_core xgrad_autograd xgrad_layers xgrad_optim xgrad_data xgrad_sampler
  xgrad_flags)
if(XGRAD_WITH_MPI)
  list(APPEND xgrad_installed_targets xgrad_distributed)  # consumers find MPI (see xgradConfig.cmake.in)
endif()
install(TARGETS ${xgrad_installed_targets}
  EXPORT xgradTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# The public headers, as <xgrad/...>: nothing else lands at the top of include/. Kernel
# headers are internal; the MPI header only with MPI.
set(xgrad_header_excludes PATTERN "*_kernels*.hpp" EXCLUDE)
if(NOT XGRAD_WITH_MPI)
  list(APPEND xgrad_header_excludes PATTERN "distributed.hpp" EXCLUDE)
endif()
install(DIRECTORY ${PROJECT_SOURCE_DIR}/xgrad/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/xgrad
  FILES_MATCHING PATTERN "*.hpp" ${xgrad_header_excludes})

install(EXPORT xgradTargets NAMESPACE xgrad:: DESTINATION ${XGRAD_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/xgradConfig.cmake.in
  ${PROJECT_BINARY_DIR}/xgradConfig.cmake INSTALL_DESTINATION ${XGRAD_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/xgradConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/xgradConfig.cmake ${PROJECT_BINARY_DIR}/xgradConfigVersion.cmake
  DESTINATION ${XGRAD_CMAKE_DIR})
