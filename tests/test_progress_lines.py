"""Progress where stderr is not a terminal: plain lines a log can hold, not a bar that draws nothing."""

from shortlist.cli._common import progress_lines


def test_lines_at_step_changes_ends_and_at_most_every_interval(capsys) -> None:
    now = [0.0]
    report = progress_lines("exporting 40 users", every_s=30.0, clock=lambda: now[0])
    for done, t in [(0, 0.0), (1, 10.0), (2, 31.0), (3, 40.0), (4, 45.0)]:
        now[0] = t
        report("recommending", done, 4)
    now[0] = 50.0
    report("writing", 1, 2)
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "exporting 40 users: recommending 0/4 (0:00:00 elapsed)",
        "exporting 40 users: recommending 2/4 (0:00:31 elapsed, ~0:00:31 left)",  # 30 s after the last line
        "exporting 40 users: recommending 4/4 (0:00:45 elapsed)",  # the step's end
        "exporting 40 users: writing 1/2 (0:00:05 elapsed, ~0:00:05 left)",  # a new step, begun at the last report
    ]
