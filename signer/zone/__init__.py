"""The isolated zone signer: loader, zone rules, NSEC/NSEC3, parallel RRSIGs, output.

See :mod:`signer.zone.model` for the in-memory representation every part shares.
"""
