"""Provisioning helpers: text that the tools building machines (Vagrant) print, parsed by pure
functions, and the head configuration built from it."""
