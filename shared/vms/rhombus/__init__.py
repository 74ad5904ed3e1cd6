"""Rhombus adapter."""
