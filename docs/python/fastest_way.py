"""Times nine ways to give a child process a NumPy array, the Python side of our benchmark.

The protocol is the one of the tutorial "Fastest Way To Share NumPy Array Between
Processes": create 100,000,000 float64 ones, share them with one new child process
that reads the array's length, wait for the child. The clock covers all of that.
This script is our own code, written so that the Rust programs' `bench` commands and
Python can be measured on the same machine on the same day with the same protocol.

Every timed run happens in a fresh Python process (this script re-runs itself with
--one), so each run's peak memory is its own and no run inherits another's heap.
Output: one line per method, in the same form as the Rust benches:

    <method> median=<s> min=<s> max=<s> peak_parent_mb=<m> peak_child_mb=<m>

Usage:
    python3 fastest_way.py                       # every method, n = 100,000,000, 3 runs
    python3 fastest_way.py --n 1000000 --repeats 1 --methods pipe queue
    python3 fastest_way.py --start-method spawn  # arguments are pickled, not inherited
"""

import argparse
import ctypes
import json
import multiprocessing as mp
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing import shared_memory
from multiprocessing.managers import BaseManager

import numpy as np

# Our names for the tutorial's methods (the Rust benches use the same ones).
METHODS = [
    "floor",      # ones(n) in one process: the cost every method pays before sharing
    "inherit",    # a global array inherited by a forked child
    "argument",   # the array as the child's argument (inherited, under fork)
    "argument-spawn",  # the same under the spawn start method: the array is pickled
    "pipe",       # sent through multiprocessing.Pipe
    "queue",      # put on a multiprocessing.Queue
    "copy-in",    # copied into a ctypes Array (multiprocessing.Array)
    "anonymous",  # a ctypes RawArray, filled in place
    "named-shm",  # multiprocessing.shared_memory.SharedMemory
    "mmap",       # numpy.memmap on a file
    "manager",    # hosted by a manager process, used through a proxy
]


# ---------------------------------------------------------------------------------
# What the child does: find the array and check its length. Nothing else.
# ---------------------------------------------------------------------------------

def expect_length(array, n):
    if len(array) != n:
        raise SystemExit(f"child: expected {n} values, found {len(array)}")


GLOBAL_ARRAY = None


def child_inherit(n):
    expect_length(GLOBAL_ARRAY, n)


def child_argument(array, n):
    expect_length(array, n)


def child_pipe(receiving_end, n):
    expect_length(receiving_end.recv(), n)


def child_queue(queue, n):
    expect_length(queue.get(), n)


def child_ctypes(raw, n):
    expect_length(np.frombuffer(raw, dtype=np.float64), n)


def child_named_shm(name, n):
    segment = shared_memory.SharedMemory(name=name)
    expect_length(np.ndarray((n,), dtype=np.float64, buffer=segment.buf), n)
    segment.close()


def child_mmap(path, n):
    expect_length(np.memmap(path, dtype=np.float64, mode="r+", shape=(n,)), n)


def child_manager(proxy, n):
    # A proxy forwards method calls; the sum is computed in the manager process.
    total = proxy.sum()
    if total != n:
        raise SystemExit(f"child: expected a sum of {n}, found {total}")


class ArrayManager(BaseManager):
    pass


# `exposed` names the methods the proxy forwards; the child calls only sum(). Without
# it, the manager lists every public attribute of the array by reading each one, and
# numpy 2's `mT` (matrix transpose) raises for a 1-D array, failing the proxy.
ArrayManager.register("ones", np.ones, exposed=("sum",))


# ---------------------------------------------------------------------------------
# One run of one method, in the parent: create, share, wait.
# ---------------------------------------------------------------------------------

def start_and_wait(target, *args):
    child = mp.Process(target=target, args=args)
    child.start()
    return child


def join(child):
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"the child process failed with exit code {child.exitcode}")


def run_once(method, n):
    global GLOBAL_ARRAY
    if method == "floor":
        array = np.ones(n)
        expect_length(array, n)
    elif method == "inherit":
        GLOBAL_ARRAY = np.ones(n)
        join(start_and_wait(child_inherit, n))
        GLOBAL_ARRAY = None
    elif method in ("argument", "argument-spawn"):
        join(start_and_wait(child_argument, np.ones(n), n))
    elif method == "pipe":
        array = np.ones(n)
        receiving_end, sending_end = mp.Pipe(duplex=False)
        child = start_and_wait(child_pipe, receiving_end, n)
        sending_end.send(array)
        join(child)
    elif method == "queue":
        array = np.ones(n)
        queue = mp.Queue()
        child = start_and_wait(child_queue, queue, n)
        queue.put(array)
        join(child)
    elif method == "copy-in":
        array = np.ones(n)
        # Array() copies element by element through ctypes: the slow part.
        shared = mp.Array(ctypes.c_double, array, lock=False)
        join(start_and_wait(child_ctypes, shared, n))
    elif method == "anonymous":
        shared = mp.RawArray(ctypes.c_double, n)
        np.frombuffer(shared, dtype=np.float64).fill(1.0)
        join(start_and_wait(child_ctypes, shared, n))
    elif method == "named-shm":
        segment = shared_memory.SharedMemory(create=True, size=n * 8)
        try:
            np.ndarray((n,), dtype=np.float64, buffer=segment.buf).fill(1.0)
            join(start_and_wait(child_named_shm, segment.name, n))
        finally:
            segment.close()
            segment.unlink()
    elif method == "mmap":
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "array.f64")
            array = np.memmap(path, dtype=np.float64, mode="w+", shape=(n,))
            # No flush, as in the tutorial: the child maps the same page cache.
            array.fill(1.0)
            join(start_and_wait(child_mmap, path, n))
            del array
    elif method == "manager":
        with ArrayManager() as manager:
            proxy = manager.ones((n,))
            join(start_and_wait(child_manager, proxy, n))
    else:
        raise SystemExit(f"unknown method {method!r}")


def peak_mb(who):
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(who).ru_maxrss * 1024 // 1_000_000


def one(args):
    # Under fork, an argument is inherited like a global, not pickled; the Rust
    # program's `argument` method is spawn-style, so it compares with this one.
    mp.set_start_method("spawn" if args.one == "argument-spawn" else args.start_method)
    started = time.perf_counter()
    run_once(args.one, args.n)
    seconds = time.perf_counter() - started
    print(json.dumps({
        "seconds": seconds,
        "peak_parent_mb": peak_mb(resource.RUSAGE_SELF),
        "peak_child_mb": peak_mb(resource.RUSAGE_CHILDREN),
    }))


def measure(method, args):
    """A warm-up run, then `repeats` runs, each in a fresh Python process."""
    command = [sys.executable, os.path.abspath(__file__), "--one", method,
               "--n", str(args.n), "--start-method", args.start_method]
    runs = []
    for attempt in range(args.repeats + 1):
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"error: {method} failed: {done.stderr.strip()}")
        if attempt > 0:
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    seconds = [run["seconds"] for run in runs]
    return {
        "method": method,
        "median": statistics.median(seconds),
        "min": min(seconds),
        "max": max(seconds),
        "peak_parent_mb": max(run["peak_parent_mb"] for run in runs),
        "peak_child_mb": max(run["peak_child_mb"] for run in runs),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000_000,
                        help="number of float64 values (default: 100,000,000)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs per method, after one warm-up (default: 3)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=METHODS)
    parser.add_argument("--start-method", choices=["fork", "spawn", "forkserver"],
                        default="fork", help="multiprocessing start method (default: fork)")
    parser.add_argument("--json", metavar="FILE", help="also write the results to FILE")
    parser.add_argument("--one", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.n < 1 or args.repeats < 1:
        parser.error("--n and --repeats must be at least 1")
    if args.one:
        return one(args)
    if args.start_method != "fork":
        args.methods = [m for m in args.methods if m not in ("inherit", "argument-spawn")]
    results = []
    for method in args.methods:
        result = measure(method, args)
        results.append(result)
        print(f"{method} median={result['median']:.6f} min={result['min']:.6f} "
              f"max={result['max']:.6f} peak_parent_mb={result['peak_parent_mb']} "
              f"peak_child_mb={result['peak_child_mb']}", flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({"python": sys.version.split()[0], "numpy": np.__version__,
                       "start_method": args.start_method, "n": args.n,
                       "results": results}, out, indent=2)


if __name__ == "__main__":
    main()
