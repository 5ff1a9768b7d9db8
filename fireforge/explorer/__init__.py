"""The design-space explorer (``fireforge explore``): a tool above the compiler, so it may build models (the
``models`` package) as well as compile and time them (``sw``, ``hw``, ``sim``).

space   axes, presets, spec files, points and their content hashes
point   one point with the compiler's models (lower once per network, evaluate per engine and board)
sweep   the sweep on Dask, the cache, results.json / .csv, the terminal summary
verify  ``--verify`` (compile + Verilated run) and ``--synth`` / ``--pnr`` for a point
"""
