"""Running the per-image work of clean, vet and scrape on a Ray cluster (`--ray [ADDRESS]`, `ray:`).

Only where the work runs changes: the driver (the `datacurate` process) walks the folders, sends
batches of paths (clean), images to embed (vet) or URLs to download (scrape) to Ray tasks and
actors, and alone writes the catalog and moves files, so the outcome is the one a local run gives.
Workers read the files through a shared file system: the workspace at the same path on every node.
Nothing here imports Ray until a command asks for a cluster (options.py never does).
"""
