"""A Python child for examples-mmap: open the parent's file with numpy.memmap, add 1, exit.

    examples-mmap one-child --child-cmd "python3 docs/python/mmap_child.py"
    examples-mmap many-children --children 4 --child-cmd "python3 docs/python/mmap_child.py --quiet"

The Rust parent creates the file (raw little-endian float32, no header) and runs
this script with the arguments its own child gets: the file's path and the number
of values, e.g. `/tmp/examples-mmap-x1y2/data.f32 1000`, and in many-children the
child's number too. The script does what the program's own child does: it maps the
file read-write (numpy's mode 'r+'), prints the first 10 values, adds 1 to every
value, flushes, prints them again and exits 0. Then the parent checks every value,
exactly as with its own child.

--quiet prints nothing, as the program's own children do in many-children, where
there are many of them. Their `data += 1` takes no lock, like the tutorial's:
the parent counts the updates that get lost.
"""

import signal

# If the parent is stopped, it kills and reaps us itself. Should a Ctrl-C reach us
# anyway, die of it quietly, as the Rust child does, instead of a KeyboardInterrupt
# trace.
signal.signal(signal.SIGINT, signal.SIG_DFL)

import argparse  # noqa: E402  (after the line above, so Ctrl-C during imports is quiet too)
import sys  # noqa: E402
import time  # noqa: E402

import numpy  # noqa: E402


def fail_on_purpose(how):
    """--fail, for the test suite: fail the way a broken child would."""
    if how == "exit":
        # One write, newline included: print() writes the text and the newline
        # separately, and a parent that kills the other children at this moment
        # would leave the line open, gluing its own "error:" line onto ours.
        sys.stderr.write("child: failing on purpose (--fail exit)\n")
        sys.exit(3)
    if how == "panic":
        raise RuntimeError("child: failing on purpose (--fail panic)")
    if how == "sleep":
        time.sleep(60)


def print_first(data):
    first = ", ".join(str(value) for value in data.flat[:10])
    print(f"child: first {min(10, data.size)} values: [{first}]", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", action="store_true", help="print nothing")
    parser.add_argument("path")
    parser.add_argument("n", type=int, help="the number of float32 values")
    parser.add_argument("id", nargs="?", help="the child's number, in many-children")
    parser.add_argument("--fail", choices=["exit", "panic", "sleep"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    # mode 'r+': open the existing file read-write and map it shared. Never 'w+':
    # that would create the file anew and erase the parent's values.
    data = numpy.memmap(args.path, dtype="float32", mode="r+", shape=(args.n,))
    fail_on_purpose(args.fail)
    if not args.quiet:
        print_first(data)
    data += 1  # read, add, write back: in the pages the parent has mapped too
    data.flush()  # msync: about the disk only; the parent sees the pages already
    if not args.quiet:
        print_first(data)
    del data  # unmap


if __name__ == "__main__":
    main()
