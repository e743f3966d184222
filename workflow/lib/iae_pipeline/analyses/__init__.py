"""The analyses beyond the paper, each on the prepared data and the factor files."""
