"""A Python parent for examples-mmap: numpy makes the file, our Rust program is the child.

    python3 mmap_parent.py PROGRAM [--n N]

PROGRAM is the built examples-mmap, e.g. target/debug/examples-mmap. The script
creates a file of float32 ones the tutorial's way (numpy.memmap, mode 'w+'),
flushes it, and starts the program's child of the `one-child` scene with the
command line the program's own parent gives it:

    PROGRAM child one-child PATH N

(the child's task, then its arguments: the file and the number of values). That
sub-command is hidden from --help because the program's own parent normally starts
it; it is how any other parent can hand a file to our Rust child, which dies with
whoever started it (its parent-death signal). The child maps the file read-write,
prints the first 10 values, adds 1 to every value, flushes, and prints them again.
Python then checks every value. Exits 1 if anything is not as described.
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("program")
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    n = args.n

    with tempfile.TemporaryDirectory() as scratch:  # removed at the end, however it ends
        path = os.path.join(scratch, "data.f32")
        # '<f4' is little-endian float32 whatever the machine: the program's format.
        data = numpy.memmap(path, dtype="<f4", mode="w+", shape=(n,))
        data[:] = 1.0
        data.flush()
        print(f"python: created {path} with {n} float32 ones, flushed", flush=True)

        command = [args.program, "child", "one-child", path, str(n)]
        print(f"python: starting {' '.join(command)}", flush=True)
        # The child's lines go straight to our stdout; it dies with us.
        status = subprocess.run(command, stdin=subprocess.DEVNULL).returncode
        print(f"python: the child exited with status {status}")

        # Our mapping and the child's were the same page-cache pages: its +1 is
        # here already, without reading the file again.
        twos = int(numpy.count_nonzero(data == 2.0))
        print(f"python: first 10 values: {data[:10].tolist()}")
        print(f"python: {twos} of {n} values are 2.0")
        del data  # unmap before the directory goes

    ok = status == 0 and twos == n
    print(f"python: {'ok' if ok else 'NOT as described'}: the Rust child's +1 is in "
          f"{'every' if ok else 'not every'} value of numpy's file")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
