"""Test-only designs, model builders and benches (not shipped in the fireforge package)."""
