"""Encrypted, streaming upload of one result file to the SAS URI Clearance hands out."""
