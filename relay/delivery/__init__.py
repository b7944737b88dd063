"""Delivery: the dispatcher and its lanes, which claim due deliveries and send them."""
