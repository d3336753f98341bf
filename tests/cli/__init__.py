"""The CLI tier (a package, so its module names never clash with tests/ of the same name)."""
