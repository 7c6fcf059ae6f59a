#!/usr/bin/env python3
"""Bind-mount a folder of this machine into another process's mount namespace (python3 stdlib).

Usage: bindns.py PID SOURCE TARGET

SOURCE is resolved here (the machine's view), TARGET inside the mount namespace of PID (it must exist
there). A test-bed host has private /tmp and /run and copy-on-write /etc, /var, ..., so a plain
`mount --bind` run inside it cannot reach a scratch folder under /tmp; a detached copy of the mount
(open_tree with OPEN_TREE_CLONE) made here can be attached there (move_mount), Linux >= 5.2.
"""
import ctypes
import os
import sys

SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
OPEN_TREE_CLONE = 1
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
CLONE_NEWNS = 0x20000

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def check(ret, what):
    if ret < 0:
        err = ctypes.get_errno()
        sys.exit(f"bindns.py: {what}: {os.strerror(err)}")
    return ret


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    pid, source, target = argv
    tree = check(libc.syscall(SYS_OPEN_TREE, AT_FDCWD, os.fsencode(source),
                              OPEN_TREE_CLONE | os.O_CLOEXEC | AT_RECURSIVE), f"open_tree {source}")
    ns = os.open(f"/proc/{int(pid)}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    check(libc.setns(ns, CLONE_NEWNS), f"setns into the mount namespace of {pid}")
    os.chdir("/")
    check(libc.syscall(SYS_MOVE_MOUNT, tree, b"", AT_FDCWD, os.fsencode(target), MOVE_MOUNT_F_EMPTY_PATH),
          f"move_mount onto {target}")


if __name__ == "__main__":
    main(sys.argv[1:])
