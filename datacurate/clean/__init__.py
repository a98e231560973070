"""Clean: set aside broken files, duplicates, near-duplicates and test leaks (nothing is deleted).

The package called, `datacurate.clean(ws, ...)`, is the Python API's function (datacurate/api.py makes it so).
"""
