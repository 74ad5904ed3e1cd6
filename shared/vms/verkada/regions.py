"""Verkada's API hosts by region: kept apart from the adapter, so settings can be read and checked without
importing it (the adapter brings PyAV, ~100 MB of FFmpeg, which only a Verkada agent needs)."""

from __future__ import annotations

REGIONS = {
    "us": "https://api.verkada.com",
    "eu": "https://api.eu.verkada.com",
    "au": "https://api.au.verkada.com",
    "gov": "https://api.verkadagov.com",
}
