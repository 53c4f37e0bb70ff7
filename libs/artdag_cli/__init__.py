"""The `artdag` command line: start the embedded stack, render recipes, compute CIDs."""
