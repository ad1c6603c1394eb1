# Run by `cmake --install` / cpack (install(SCRIPT)): the units and the
# Slurm drop-in, their paths filled in for the prefix being installed to
# (/usr for the .deb, /usr/local by default), which configure time does not
# know. MIXCAL_DEPLOY_SOURCE is set by the install(CODE) before it.
set(MIXCAL_BINDIR "${CMAKE_INSTALL_PREFIX}/bin")
set(MIXCAL_DOCDIR "${CMAKE_INSTALL_PREFIX}/share/doc/mixcal")
set(MIXCAL_DATADIR "${CMAKE_INSTALL_PREFIX}/share/mixcal")
set(root "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}")
foreach(unit mixcal-coordinator.service mixcal-worker@.service)
  message(STATUS "Installing: ${root}/lib/systemd/system/${unit}")
  configure_file("${MIXCAL_DEPLOY_SOURCE}/systemd/${unit}.in"
                 "${root}/lib/systemd/system/${unit}" @ONLY)
endforeach()
message(STATUS "Installing: ${root}/share/mixcal/mixcal-coordinator-slurm.conf")
configure_file("${MIXCAL_DEPLOY_SOURCE}/systemd/mixcal-coordinator-slurm.conf"
               "${root}/share/mixcal/mixcal-coordinator-slurm.conf" @ONLY)
