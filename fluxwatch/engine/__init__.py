"""Detection and recovery: tracker, pure policy and guardrail, recovery ladder, lease monitor."""
