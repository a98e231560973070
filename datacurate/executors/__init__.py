"""Where per-item work runs: in this process, in local worker processes, or on a Ray cluster (`--ray`, `ray:`).

A stage hands an executor a kernel (a picklable, module-level function) and its items; the executor
sends batches of items to the kernel and gives the results back in order. Executors know no stage:
each stage owns its kernels (core.index's decode, scrape.remote's download, vet.remote's embedding
actor). Only where the work runs changes: the driver (the `datacurate` process) walks the folders,
alone writes the catalog and moves files, so the outcome is the one a serial run gives. On a cluster
the workers read the files through a shared file system: the workspace at the same path on every
node. Nothing here imports Ray until a command asks for a cluster (options.py never does).

    base.py     the Executor protocol and executor_for (serial, pool or Ray, from --workers and --ray)
    serial.py   in this process        pool.py   local worker processes (one pool for the package)
    connect.py  connecting to a Ray cluster and checking its nodes
    ray.py      tasks and actors on the cluster          options.py  the `ray:` section and --ray
    batches.py  cutting items into batches
"""
