"""Reliability drills: each one breaks something on purpose (a process, the network, a file,
the disk, the API's load, its input, its secrets) and checks what the system does about it.

`make drills` runs them all (`python -m drills.run`); docs/reliability.md says what each proves.
"""
