"""The Python client's tests (pytest), against real sessiond servers."""
