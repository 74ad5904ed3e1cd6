"""Eagle Eye Networks (API v3) adapter."""
