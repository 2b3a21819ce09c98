"""The `speechmesh` command line: servers (serve, up) and clients, one module per area."""
