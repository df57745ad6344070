"""Python beside examples-mmap: numpy opens our file, and Python joins the children's lock.

The Rust program's file is raw little-endian float32 with no header, so numpy.memmap
opens it as it is. Its locked children lock the bytes they are about to change with
fcntl; Python's fcntl.lockf takes locks from the same kernel table, so a Python process
can hold the children off, and they wait for it.

Usage:
    python3 mmap_numpy.py PROGRAM [--n N] [--children K] [--hold SECONDS]

PROGRAM is the built binary, e.g. target/debug/examples-mmap. Exits 1 if anything
is not as described.
"""

import argparse
import fcntl
import os
import subprocess
import sys
import tempfile
import time

import numpy


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("program")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--children", type=int, default=8)
    parser.add_argument("--hold", type=float, default=1.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "data.f32")
        with open(path, "w+b") as lock_file:
            # Lock the bytes of value 0. The children lock 1 MiB chunks; the first chunk
            # overlaps ours, so no child can start until we let go.
            # lockf takes a classic POSIX lock: it belongs to this process and vanishes
            # as soon as the process closes ANY descriptor of the file. numpy.memmap(path)
            # opens and closes one, so below we map through lock_file itself. (The
            # children use open-file-description locks, which do not have this trap.)
            fcntl.lockf(lock_file, fcntl.LOCK_EX, 4, 0)
            run = subprocess.Popen(
                [args.program, "many-children-locked", "--path", path,
                 "--n", str(args.n), "--children", str(args.children)],
                stdout=subprocess.PIPE, text=True,
            )
            # The parent fills the file and times its floor first; then it starts
            # the children, who go straight for the lock.
            for line in run.stdout:
                if line.startswith("parent: starting"):
                    break
            time.sleep(args.hold)
            waiting = run.poll() is None
            untouched = os.path.getsize(path) == 4 * args.n and not numpy.memmap(
                lock_file, dtype="float32", mode="r", shape=(args.n,)).any()
            print(f"python: held the lock {args.hold} s: program still waiting: {waiting}, "
                  f"all values still 0: {untouched}")
            fcntl.lockf(lock_file, fcntl.LOCK_UN, 4, 0)
        run.stdout.read()
        status = run.wait()
        print(f"python: released the lock; the program exited with status {status}")

        # The tutorial's own way to open the array in another process.
        data = numpy.memmap(path, dtype="float32", mode="r+", shape=(args.n,))
        exact = bool((data == args.children).all())
        print(f"python: numpy.memmap sees {data[:5]} ...; all {args.n} values "
              f"are {args.children}: {exact}")
        del data

    ok = waiting and untouched and status == 0 and exact
    print("python: ok" if ok else "python: NOT as described")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
