"""Local emulators of the five vendor APIs serving one deterministic synthetic world.

Start it with ``marketing-etl sandbox``; see docs/sandbox.md.
"""
