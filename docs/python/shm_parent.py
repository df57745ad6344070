"""A Python parent for examples-shm: Python owns the segment, our Rust program is the child.

    python3 shm_parent.py PROGRAM [--n N]

PROGRAM is the built examples-shm, e.g. target/debug/examples-shm. The script
creates a SharedMemory segment the tutorial's way, fills it with ones through a
numpy array, and starts the program's child of the `named` scene with the command
line the program's own parent gives it:

    PROGRAM child named /NAME N

(the child's task, then its arguments: the segment's name and the number of
values). That sub-command is hidden from --help because the program's own parent
normally starts it; it is how any other parent can lend a segment to our Rust
child, which dies with whoever started it (its parent-death signal). The child
opens the segment by name, prints the first 10 values, adds 1 to every element
and exits. Python then checks every element, and removes the segment.
Exits 1 if anything is not as described.
"""

import argparse
import os
import subprocess
import sys
from multiprocessing import shared_memory

import numpy


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("program")
    parser.add_argument("--n", type=int, default=100_000_000)
    args = parser.parse_args()
    n = args.n

    # A name the Rust program accepts (letters, digits, '-', at most 30 characters)
    # and that no other run on this machine uses at the same time.
    name = f"pyshm-{os.getpid()}"
    shm = shared_memory.SharedMemory(name=name, create=True, size=n * 8)
    # Python created it, so Python removes it, whatever happens below. (If this
    # process is killed outright, its resource tracker still unlinks it.)
    try:
        data = numpy.ndarray((n,), dtype=numpy.float64, buffer=shm.buf)
        data[:] = 1.0
        print(f"python: created /{name} ({n} float64 values) and filled it with ones",
              flush=True)

        command = [args.program, "child", "named", f"/{name}", str(n)]
        print(f"python: starting {' '.join(command)}", flush=True)
        # The child's lines go straight to our stdout; it dies with us.
        status = subprocess.run(command, stdin=subprocess.DEVNULL).returncode
        print(f"python: the child exited with status {status}")

        # The same check as the Rust parent: every element, not just the first 10.
        twos = int(numpy.count_nonzero(data == 2.0))
        print(f"python: first 10 values: {data[:10].tolist()}")
        print(f"python: {twos} of {n} values are 2.0")
        del data  # the view must go before the mapping can be closed
    finally:
        shm.unlink()  # first: the name must go even if closing fails below
        shm.close()
    print(f"python: unlinked /{name}")

    ok = status == 0 and twos == n
    print(f"python: {'ok' if ok else 'NOT as described'}: the Rust child's +1 is in "
          f"{'every' if ok else 'not every'} element of Python's segment")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
