"""A Python child for the `named` scene of examples-shm: attach by name, add 1, exit.

    examples-shm named --child-cmd "python3 docs/python/shm_child.py"

The Rust parent creates the segment, fills it with ones, and runs this script with
the arguments its own child gets: the segment's name and the number of float64
values, e.g. `/exshm-4711-1a2b3c4d 1000`. The script does what the program's own
child does: it prints the first 10 values, adds 1 to every element and exits 0.
Then the parent checks every element, exactly as with its own child.

The segment belongs to the Rust parent: this script only attaches, and must never
unlink it (see attach below).
"""

import signal

# If the parent is stopped, it kills and reaps us itself (and unlinks the segment).
# Should a Ctrl-C reach us anyway, die of it quietly, as the Rust child does,
# instead of a KeyboardInterrupt trace.
signal.signal(signal.SIGINT, signal.SIG_DFL)

import argparse  # noqa: E402  (after the line above, so Ctrl-C during imports is quiet too)
import sys  # noqa: E402
import time  # noqa: E402
from multiprocessing import resource_tracker, shared_memory  # noqa: E402

import numpy  # noqa: E402


def attach(name):
    """Open the existing segment `name` without making Python responsible for it.

    Python's resource tracker unlinks, when the program ends, every segment
    registered with it: a safety net for segments Python created. Before Python
    3.13, merely attaching registers the segment too, so the tracker would remove
    the Rust parent's segment as this child exits (and warn about a "leaked"
    segment). 3.13 added track=False; on older versions we take the registration
    back at once. (Were this child killed between the two lines, the tracker would
    unlink the name early: harmless here, since the parent unlinks it anyway.)
    """
    try:
        return shared_memory.SharedMemory(name=name, track=False)  # Python 3.13+
    except TypeError:  # "unexpected keyword argument 'track'": before 3.13
        shm = shared_memory.SharedMemory(name=name)
        resource_tracker.unregister(shm._name, "shared_memory")
        return shm


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="the segment's name, e.g. /demo")
    parser.add_argument("n", type=int, help="the number of float64 values")
    parser.add_argument("--fail", choices=["exit", "panic", "sleep"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    # SharedMemory adds the leading '/' itself.
    name, n = args.name.lstrip("/"), args.n

    shm = attach(name)
    print(f"child: attached to /{name} by name ({shm.size} bytes mapped)", flush=True)
    fail_on_purpose(args.fail)

    # A numpy view of the segment's bytes: no copy, the same pages as the parent.
    data = numpy.ndarray((n,), dtype=numpy.float64, buffer=shm.buf)
    first = ", ".join(str(value) for value in data.flat[:10])
    print(f"child: first {min(10, data.size)} values: [{first}]")
    data += 1
    print(f"child: added 1 to all {data.size} elements", flush=True)

    # numpy still points into the mapping: drop the view before closing it, or
    # close() refuses ("cannot close exported pointers exist").
    del data
    shm.close()  # unmap; never shm.unlink(): the name is the parent's to remove


if __name__ == "__main__":
    main()
