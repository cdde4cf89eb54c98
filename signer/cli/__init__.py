"""The ``zonesigner`` command line."""
