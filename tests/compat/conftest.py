"""The programs under programs/ are PyTorch scripts run by test_programs.py, not test modules."""

collect_ignore_glob = ["programs/*.py"]
