"""Print the fault suite's table (tests/test_faults.py) as Markdown, with what each case said.

    AUTALK_FAULT_REPORT=faults.json python -m pytest tests/test_faults.py
    python tools/reliability_table.py faults.json > table.md

The report holds, per case, the exit status and the last line the user saw
(stderr for an error, stdout for a success), as measured by that run.
"""

import json
import pathlib
import shlex
import signal
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_faults import CASES  # noqa: E402


def how(case):
    command = "autalk " + shlex.join(case.args)
    if case.kind == "signal":
        when = "once it is writing" if case.delay is None else f"{case.delay:g} s in"
        return f"`{command}`, then {signal.Signals(case.signal).name} {when}"
    if case.kind == "parallel":
        count = 2 if "one output" in case.id else 3
        return f"{count} × `{command}` at once" + ("" if count == 2 else " (o0..o2.mp4)")
    if case.kind == "disk":
        filled = ", filled up by another writer once the run is writing" if case.fill else ""
        return f"`{command}` with `disk/` a tmpfs `-o {case.tmpfs}`{filled}"
    return f"`{command}`"


def main(report_path):
    report = json.loads(pathlib.Path(report_path).read_text())
    print("| # | input or fault | how | exit | what the user sees |")
    print("| ---: | --- | --- | ---: | --- |")
    held = 0
    for number, case in enumerate(CASES, 1):
        seen = report.get(case.id)
        if seen is None:
            status, says = "not run", ""
        else:
            status, says = seen["status"], seen["says"] or "(nothing: killed)"
            held += 1
        says = says.replace("|", "\\|")
        print(
            f"| {number} | {case.id} | {how(case).replace('|', chr(92) + '|')} | {status} | "
            f"{says} |"
        )
    print(f"\n{len(CASES)} cases tried, {held} held.")


if __name__ == "__main__":
    main(sys.argv[1])
