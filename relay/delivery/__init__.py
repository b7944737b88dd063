"""Delivery: workers that claim due deliveries and send them, and the HTTP sender."""
