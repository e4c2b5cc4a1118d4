"""A small, long-lived process that starts bench workers and reports their rusage.

    python -S bench/harness/launcher.py

Why: on Linux a child's ru_maxrss is at least the peak RSS of the address space it replaced
at exec, which, for a child started with vfork or posix_spawn (as Python's subprocess does), is
its parent's. Started from the benchmark driver directly, every worker would report at least
the driver's own peak. This launcher stays tiny (only os, sys and json, no site), so the
floor it adds is below any worker's real peak.

Protocol, one JSON object per line: on stdin {"cmd": [...], "cwd": DIR, "stdout": PATH,
"stderr": PATH}; on stdout {"exit": CODE, "maxrss_kib": N}.
"""
import json
import os
import sys


def main():
    for line in sys.stdin:
        req = json.loads(line)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        out = os.open(req["stdout"], flags, 0o644)
        err = os.open(req["stderr"], flags, 0o644)
        old_cwd = os.getcwd()
        os.chdir(req["cwd"])
        try:
            pid = os.posix_spawn(req["cmd"][0], req["cmd"], os.environ,
                                 file_actions=[(os.POSIX_SPAWN_DUP2, out, 1),
                                               (os.POSIX_SPAWN_DUP2, err, 2)])
        finally:
            os.chdir(old_cwd)
            os.close(out)
            os.close(err)
        _, status, usage = os.wait4(pid, 0)
        sys.stdout.write(json.dumps({"exit": os.waitstatus_to_exitcode(status),
                                     "maxrss_kib": usage.ru_maxrss}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
