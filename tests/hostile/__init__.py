"""The hostile-input and fault catalogue (see catalogue.py); `python -m tests.hostile` prints it
with the observed outcomes."""
