"""Who holds a TCP port: named in the error when a server cannot listen, so an operator
finds a leftover process at once instead of guessing."""

from __future__ import annotations

from pathlib import Path

_LISTEN = "0A"  # TCP state in /proc/net/tcp


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == _LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def port_holder(port: int) -> str | None:
    """ "pid N (command line)" of a process listening on `port`, where /proc tells."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    sockets = {f"socket:[{inode}]" for inode in inodes}
    for process in Path("/proc").glob("[0-9]*"):
        try:
            for fd in (process / "fd").iterdir():
                if fd.readlink().as_posix() in sockets:
                    command = (process / "cmdline").read_bytes().replace(b"\0", b" ")
                    return f"pid {process.name} ({command.decode(errors='replace').strip()})"
        except OSError:
            continue
    return None
