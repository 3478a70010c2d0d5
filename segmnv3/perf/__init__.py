"""Speed figures, each measured side by side with the obvious alternative in one process:
inference latency (latency.py), training throughput (throughput.py), timing helpers."""
