"""lxctool: provision LXD system containers with cgroup limits, and prove the limits hold."""

__version__ = "0.1.0"
