"""Scores of every factor against the condition, their summaries over replicates, and
the result tables (Table 1, top terms)."""
