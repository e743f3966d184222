"""Scores of every factor against the condition (logistic regression; the factor's share of
the condition's expression change), their summaries over replicates, and the result tables
(Table 1, top terms)."""
