"""Thin click commands, one module per command family; registered in cli.py."""
