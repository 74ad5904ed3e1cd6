"""Verkada Command: cameras, thumbnails and recorded video over the REST and HLS streaming APIs."""
