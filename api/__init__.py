"""Litestar REST API over the published marts (issue #5: not built yet)."""
