"""A Flower app whose FedAvg runs under ringsum secure aggregation."""
