"""Reliability suites' report: faults survived, hostile inputs refused, records lost.

`reliability.report` defines the JSON report and the functions tests call to add
to it; `reliability.run` runs the suites (tests/reliability) and builds it;
`switchboard reliability [--quick]` prints it.
"""
